import Foundation
import Testing

/// `--monitor rollback` on a collapse that starts mid-run: the run goes back to a snapshot from
/// before the finding's onset_step (not merely the last one, taken after the fault began),
/// applies the remedy and finishes healthy.
@Suite(.serialized, .needsFashionMNIST)
struct MonitorRollbackTests {
    @Test func aMidRunLearningRateJumpIsRolledBackToBeforeItsOnsetAndTheRunFinishesHealthy() throws {
        let config = Chorus.repositoryRoot + "/scenarios/learning_rate_too_high--midrun-step-x400.json"
        let out = Chorus.temporaryDirectory("rollback")
        let result = try Chorus.run(["train", "--config", config, "--monitor", "rollback", "--out", out, "--quiet"], timeout: 300)
        #expect(result.status == 0, "\(result.error)")
        let report = try Chorus.report(out)
        let collapse = report["collapse"] as? [String: Any] ?? [:]
        #expect(collapse["cause"] as? String == "learning_rate_too_high", "\(collapse)")
        let actions = collapse["actions"] as? [String] ?? []
        // "step 155: restored parameters of step 150 (onset estimated at step 151)"
        let restore = try #require(actions.first { $0.contains("restored parameters of step") }, "\(actions)")
        let restored = Int(restore.components(separatedBy: "restored parameters of step ")[1].prefix { $0.isNumber }) ?? .max
        #expect(restore.contains("onset estimated at step 151"), "\(restore)")
        #expect(restored < 151, "\(restore)")
        #expect(actions.contains { $0.contains("scaled the learning rate back by 0.0025 to 0.05 (the rate before its jump)") }, "\(actions)")
        // Healthy again: the test accuracy of a 260-step MLP, not a diverged one's 0.10.
        #expect((report["test_accuracy"] as? Double ?? 0) > 0.7, "\(report["test_accuracy"] ?? "none")")
    }
}
