import Testing
@testable import Coordination

/// How far back clean audits vouch for each worker, and where a proven-wrong worker sends the run.
@Suite struct AuditLedgerTests {
    /// Runs `steps` steps in which `workers` all contribute, taking the snapshots the ledger asks for.
    func run(_ ledger: inout AuditLedger, steps: Range<Int>, workers: [WorkerID], taken: inout [Int]) {
        for step in steps {
            if ledger.wantsSnapshot(at: step) { ledger.snapshotTaken(at: step); taken.append(step) }
            _ = ledger.releasable()
            for worker in workers { ledger.contributed(worker, step: step) }
        }
    }

    @Test func aWorkerNeverAuditedCleanSendsTheRunBackToTheFirstState() {
        var ledger = AuditLedger(), taken: [Int] = []
        run(&ledger, steps: 0..<10, workers: [0, 1, 2], taken: &taken)
        #expect(taken == [0])  // nothing vouched: one snapshot, at the start
        #expect(ledger.faulty(1) == 0)
        #expect(ledger.vouchedFrom == [0: 0, 2: 0])
    }

    @Test func aCleanAuditMovesBothWorkersForwardAndTheSnapshotWithThem() {
        var ledger = AuditLedger(), taken: [Int] = []
        run(&ledger, steps: 0..<5, workers: [0, 1, 2], taken: &taken)
        ledger.cleanAudit([0, 1], step: 4)
        run(&ledger, steps: 5..<9, workers: [0, 1, 2], taken: &taken)
        #expect(taken == [0, 5])
        #expect(ledger.held == [0, 5])  // worker 2 still needs state 0
        ledger.cleanAudit([2, 0], step: 8)
        run(&ledger, steps: 9..<12, workers: [0, 1, 2], taken: &taken)
        #expect(ledger.held == [5, 9])  // state 0 released once nobody needs it
        // Worker 1 was last vouched for at step 4: everything from state 5 on is undone, and
        // the others, vouched for later, fall back to state 5 with it.
        #expect(ledger.faulty(1) == 5)
        #expect(ledger.vouchedFrom == [0: 5, 2: 5])
        #expect(ledger.held == [5])
        #expect(ledger.releasable().isEmpty)
    }

    @Test func aWorkerWhoseResultsWereNeverSummedNeedsNoRewind() {
        var ledger = AuditLedger(), taken: [Int] = []
        run(&ledger, steps: 0..<3, workers: [0], taken: &taken)
        #expect(ledger.faulty(7) == nil)
        #expect(ledger.vouchedFrom == [0: 0])
    }

    @Test func aLateJoinerIsVouchedForBackToTheOldestHeldState() {
        var ledger = AuditLedger(), taken: [Int] = []
        run(&ledger, steps: 0..<4, workers: [0, 1], taken: &taken)
        ledger.cleanAudit([0, 1], step: 3)
        run(&ledger, steps: 4..<6, workers: [0, 1], taken: &taken)
        // Worker 5 joins during step 6: its first result is vouched for back to state 4, the
        // oldest held (from before anything it computed).
        run(&ledger, steps: 6..<7, workers: [0, 1, 5], taken: &taken)
        #expect(ledger.vouchedFrom[5] == 4)
        #expect(ledger.faulty(5) == 4)
    }

    @Test func forgottenWorkersReleaseTheirStatesButTheNewestStays() {
        var ledger = AuditLedger(), taken: [Int] = []
        run(&ledger, steps: 0..<3, workers: [0, 1], taken: &taken)
        ledger.forget(0)
        ledger.forget(1)
        #expect(ledger.releasable().isEmpty)  // state 0 is the newest: kept for the next joiner
        run(&ledger, steps: 3..<4, workers: [], taken: &taken)
        #expect(taken == [0, 3])
        #expect(ledger.held == [3])
        run(&ledger, steps: 4..<5, workers: [9], taken: &taken)
        #expect(ledger.vouchedFrom[9] == 4 || ledger.vouchedFrom[9] == 3)
    }
}
