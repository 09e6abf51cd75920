import Foundation

/// Reusable dense score accumulators for BM25.
final class TextScratch {
    var scores: [Float] = []
    var matched: [UInt8] = []
    var touched: [UInt32] = []

    func prepare(rows: Int) {
        if scores.count < rows {
            scores = [Float](repeating: 0, count: rows)
            matched = [UInt8](repeating: 0, count: rows)
        }
        touched.removeAll(keepingCapacity: true)
    }

    func reset() {
        for r in touched { scores[Int(r)] = 0; matched[Int(r)] = 0 }
        touched.removeAll(keepingCapacity: true)
    }
}

final class TextScratchPool: @unchecked Sendable {
    static let shared = TextScratchPool()
    private let lock = NSLock()
    private var free: [TextScratch] = []
    func with<R>(_ body: (TextScratch) throws -> R) rethrows -> R {
        let s = lock.withLock { free.popLast() } ?? TextScratch()
        defer { s.reset(); lock.withLock { free.append(s) } }
        return try body(s)
    }
}
