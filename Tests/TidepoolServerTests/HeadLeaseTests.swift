import Foundation
import NIOConcurrencyHelpers
import Tidepool
import XCTest

@testable import TidepoolServer

/// `HeadLeases`, the writer's side of leases on heads: a write is acknowledged only once every
/// unexpired lease holder has confirmed a head that includes it, and a holder that stops
/// polling holds acknowledgements no longer than its lease.
final class HeadLeaseTests: XCTestCase {
    func head(_ seq: UInt64) -> WriterHead { WriterHead(manifestVersion: 3, walHead: seq) }

    func testAPollAnswersAtOnceWhenTheHeadIsPastWhatTheNodeKnowsAndHoldsOtherwise() async {
        let leases = HeadLeases()
        let current = NIOLockedValueBox(head(5))
        let answer = await leases.poll(collection: "c", subscription: "a", known: head(0), hold: .milliseconds(250)) {
            (current.withLockedValue { $0 }, .milliseconds(1500))
        }
        XCTAssertEqual(answer?.head, head(5))
        XCTAssertEqual(answer?.lease, HeadLeases.maxLease)
        let start = ContinuousClock.now
        let held = await leases.poll(collection: "c", subscription: "a", known: head(5), hold: .milliseconds(100)) {
            (current.withLockedValue { $0 }, .milliseconds(500))
        }
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(100), "held while nothing changed")
        XCTAssertEqual(held?.lease, .milliseconds(400), "no longer than the writer may vouch, less a margin")
    }

    func testPublishWaitsForEveryHolderToConfirmTheNewHead() async {
        let leases = HeadLeases()
        let current = NIOLockedValueBox(head(1))
        let now: @Sendable () -> (head: WriterHead, validFor: Duration)? = { (current.withLockedValue { $0 }, .milliseconds(1500)) }
        _ = await leases.poll(collection: "c", subscription: "a", known: head(0), hold: .zero, current: now)
        XCTAssertEqual(leases.holderCount("c"), 1)
        current.withLockedValue { $0 = head(2) }
        let published = NIOLockedValueBox(false)
        let two = head(2)
        let publisher = Task {
            await leases.publish(collection: "c", head: two)
            published.withLockedValue { $0 = true }
        }
        try? await Task.sleep(for: .milliseconds(100))
        XCTAssertFalse(published.withLockedValue { $0 }, "the holder has not confirmed head 2")
        // The node's next poll: it knows head 1 still, so it hears of head 2 at once…
        let heard = await leases.poll(collection: "c", subscription: "a", known: head(1), hold: .milliseconds(250), current: now)
        XCTAssertEqual(heard?.head, head(2))
        try? await Task.sleep(for: .milliseconds(50))
        XCTAssertFalse(published.withLockedValue { $0 }, "hearing is not confirming")
        // …and the poll after confirms it.
        let confirm = Task { await leases.poll(collection: "c", subscription: "a", known: two, hold: .milliseconds(200), current: now) }
        await publisher.value
        XCTAssertTrue(published.withLockedValue { $0 })
        _ = await confirm.value
        await leases.publish(collection: "d", head: head(9))  // no holders: at once
    }

    func testAHolderThatStopsPollingHoldsAcknowledgementsNoLongerThanItsLease() async {
        let leases = HeadLeases()
        let one = head(1)
        _ = await leases.poll(collection: "c", subscription: "a", known: head(0), hold: .zero) { (one, .milliseconds(700)) }
        let start = ContinuousClock.now
        await leases.publish(collection: "c", head: head(2))
        let waited = ContinuousClock.now - start
        XCTAssertGreaterThan(waited, .milliseconds(400), "waited for the lease (600 ms) to run out")
        XCTAssertLessThan(waited, .milliseconds(1100), "waited no longer than the lease")
        let again = ContinuousClock.now
        await leases.publish(collection: "c", head: head(3))
        XCTAssertLessThan(ContinuousClock.now - again, .milliseconds(50), "an expired holder is not waited for")
    }

    func testLeasesOnOneCollectionAreBounded() async {
        let leases = HeadLeases()
        let one = head(1)
        for i in 0..<HeadLeases.maxHolders {
            let granted = await leases.poll(collection: "c", subscription: "s\(i)", known: head(0), hold: .zero) {
                (one, .milliseconds(1500))
            }
            XCTAssertNotNil(granted)
        }
        let refused = await leases.poll(collection: "c", subscription: "one-more", known: head(0), hold: .zero) {
            (one, .milliseconds(1500))
        }
        XCTAssertNil(refused, "no lease past the bound")
        XCTAssertEqual(leases.holderCount("c"), HeadLeases.maxHolders)
        let renewed = await leases.poll(collection: "c", subscription: "s0", known: one, hold: .zero) { (one, .milliseconds(1500)) }
        XCTAssertNotNil(renewed, "a holder keeps renewing")
    }

    func testAPollAnsweredWithoutALeaseKeepsOnlyTheLeaseHeldBefore() async {
        let leases = HeadLeases()
        let poll = await leases.poll(collection: "c", subscription: "a", known: head(0), hold: .zero) { nil }
        XCTAssertNil(poll, "a writer that cannot vouch grants nothing")
        XCTAssertEqual(leases.holderCount("c"), 0, "and is not waited for")
        let start = ContinuousClock.now
        await leases.publish(collection: "c", head: head(1))
        XCTAssertLessThan(ContinuousClock.now - start, .milliseconds(50))
    }
}
