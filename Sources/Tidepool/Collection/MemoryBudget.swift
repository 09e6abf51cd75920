import Foundation

/// A database's memory budget (`DatabaseOptions.memoryBudget`), shared by its collections: each
/// segment, before it is published to searches, is charged what its search keeps touching in the
/// tier it gets, and the charge is returned when the segment is gone (its last snapshot closed).
///
/// The planner is greedy and never refuses: a segment whose hot or warm footprint fits what is
/// left stays hot or warm; one that does not is made cold when it can be (an IVF segment with
/// SQ8 or PQ codes); one that can be neither stays as it is, over budget, and is reported so —
/// the segment planner (`SegmentPlan`) builds large segments as IVF-PQ under a budget, so the next
/// compaction moves it to a tier that fits.
final class MemoryBudget: @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private var used = 0

    init(limit: Int) { self.limit = max(0, limit) }

    /// Bytes charged to live segments now.
    var charged: Int { lock.withLock { used } }

    /// Gives `segment` its tier under the budget and charges it (see the type's comment).
    func place(_ segment: Segment) throws {
        let need = segment.residentBytes
        // Reserve in the same step as the check, so two collections placing at once cannot both fit.
        let fits = lock.withLock {
            guard used + need.hotOrWarm <= limit else { return false }
            used += need.hotOrWarm
            return true
        }
        var charge = need.hotOrWarm
        if !fits {
            if segment.canBeCold {
                try segment.moveToColdTier()
                charge = need.cold
            }
            lock.withLock { used += charge }
        }
        segment.budgetCharge = BudgetCharge(budget: self, bytes: charge)
    }

    fileprivate func release(_ bytes: Int) { lock.withLock { used -= bytes } }
}

/// What a segment was charged, returned to the budget when the segment is freed.
final class BudgetCharge: @unchecked Sendable {
    let budget: MemoryBudget
    let bytes: Int
    init(budget: MemoryBudget, bytes: Int) {
        self.budget = budget
        self.bytes = bytes
    }
    deinit { budget.release(bytes) }
}
