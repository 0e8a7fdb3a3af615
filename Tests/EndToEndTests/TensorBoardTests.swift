import Foundation
import ProcessTestSupport
import Testing

/// OUT/tensorboard read back by TensorBoard itself (its EventAccumulator, in the virtual
/// environment scripts/setup.sh makes) and checked against metrics.jsonl value for value by
/// scripts/check_tensorboard.py — for a plain run, a collapsing one, a rewind and a resume.
@Suite(.serialized, .needsFashionMNIST)
struct TensorBoardTests {
    static let python = Chorus.repositoryRoot + "/.build/tensorboard-venv/bin/python"
    static let hasTensorBoard: Bool =
        (try? ChildProcess.run(python, ["-c", "import tensorboard"], timeout: 60).end.status) == 0

    /// Runs the check on `out`; returns its one line.
    func check(_ out: String) throws -> String {
        try #require(Self.hasTensorBoard || !Chorus.isCI, "CI=true but \(Self.python) cannot import tensorboard (scripts/setup.sh installs it)")
        let run = try ChildProcess.run(Self.python, [Chorus.repositoryRoot + "/scripts/check_tensorboard.py", out], timeout: 120)
        #expect(run.end.status == 0, "\(run.output)\(run.error)")
        return run.output
    }

    @Test(.enabled(if: hasTensorBoard || Chorus.isCI, "no TensorBoard in .build/tensorboard-venv (scripts/setup.sh installs it)"))
    func aRunsEventsMatchItsMetricsAndACollapseIsAText() throws {
        let out = Chorus.temporaryDirectory("tb")
        let run = try Chorus.run(Chorus.shortRun(out: out, steps: 20) + ["--workers", "2"])
        #expect(run.status == 0, "\(run.error)")
        #expect(try check(out).hasPrefix("ok: 20 steps"))
        let collapse = Chorus.temporaryDirectory("tb-collapse")
        let scenario = Chorus.repositoryRoot + "/scenarios/symmetric_weights--zero-init.json"
        _ = try Chorus.run(["train", "--config", scenario, "--max-steps", "30", "--out", collapse, "--quiet"])
        let line = try check(collapse)
        #expect(!line.contains(" 0 collapse alerts"), "\(line)")
        let none = Chorus.temporaryDirectory("tb-none")
        _ = try Chorus.run(Chorus.shortRun(out: none, steps: 2) + ["--no-tensorboard"])
        #expect(!FileManager.default.fileExists(atPath: none + "/tensorboard"))
    }

    /// A rewind (a quarantined worker) and a resume compute steps again: TensorBoard shows each
    /// step once, with the values metrics.jsonl kept.
    @Test(.enabled(if: hasTensorBoard || Chorus.isCI, "no TensorBoard in .build/tensorboard-venv (scripts/setup.sh installs it)"))
    func stepsComputedAgainAppearOnce() throws {
        let rewound = Chorus.temporaryDirectory("tb-rewind")
        let run = try Chorus.run(Chorus.shortRun(out: rewound, steps: 12)
            + ["--workers", "3", "--fault", "bitflip:worker=2,rate=0.001,step=6", "--audit-every", "2"])
        #expect(run.status == 0, "\(run.error)")
        let cluster = try Chorus.report(rewound)["cluster"] as? [String: Any]
        #expect((cluster?["recomputed_steps"] as? Int ?? 0) > 0, "no rewind happened: \(cluster ?? [:])")
        #expect(try check(rewound).hasPrefix("ok: 12 steps"))
        let resumed = Chorus.temporaryDirectory("tb-resume")
        _ = try Chorus.run(Chorus.shortRun(out: resumed, steps: 10) + ["--checkpoint-every", "5"])
        let again = try Chorus.run(["train", "--resume", resumed, "--max-steps", "16", "--out", resumed, "--quiet"])
        #expect(again.status == 0, "\(again.error)")
        #expect(try check(resumed).hasPrefix("ok: 16 steps"))
    }
}
