import Foundation
import Testing

@Suite(.serialized, .needsFashionMNIST)
struct MoreClusterTests {
    @Test func slowWorkerStillGivesTheSameParameters() throws {
        let out = Chorus.temporaryDirectory("slow")
        let result = try Chorus.run(Chorus.shortRun(out: out, steps: 8) + ["--workers", "2", "--fault", "slow:worker=1,ms=150"])
        #expect(result.status == 0, "\(result.error)")
        #expect(try Chorus.report(out)["params_sha256"] as? String == DistributedTrainingTests.reference)
    }

    @Test func noWorkersLeftFailsWithAReportInsteadOfHanging() throws {
        let out = Chorus.temporaryDirectory("noworkers")
        let result = try Chorus.run(Chorus.shortRun(out: out, steps: 50) + [
            "--workers", "1", "--no-respawn", "--fault", "kill:worker=0,step=2", "--no-worker-timeout-ms", "1500",
        ], timeout: 120)
        #expect(result.status != 0)
        #expect(result.error.contains("worker"), "\(result.error)")
        // A hang would end in the harness's kill with no report; a report says the run gave up
        // by itself, and its error says after how long without workers: the 1.5 s asked for
        // (the timer's granularity on a busy machine aside), not the 30 s default.
        let report = try Chorus.report(out)
        #expect(report["status"] as? String == "failed")
        #expect((report["steps"] as? Int ?? 99) < 50)
        let error = report["error"] as? String ?? ""
        let waited = Self.secondsWithoutWorkers(error)
        #expect(waited.map { 1.5 <= $0 && $0 < 10 } == true, "\(error)")
    }

    /// The seconds in the coordinator's "no live workers for 1.52 s during step 2; …" error.
    static func secondsWithoutWorkers(_ error: String) -> Double? {
        guard let range = error.range(of: "no live workers for ") else { return nil }
        return Double(error[range.upperBound...].prefix { $0.isNumber || $0 == "." })
    }

    @Test func bf16GradientsTrainButAreNotBitReproducible() throws {
        let out = Chorus.temporaryDirectory("bf16")
        let result = try Chorus.run(Chorus.shortRun(out: out, steps: 8) + ["--workers", "2", "--wire-dtype", "bf16"])
        #expect(result.status == 0, "\(result.error)")
        let report = try Chorus.report(out)
        #expect(report["status"] as? String == "completed")
        #expect(report["params_sha256"] as? String != DistributedTrainingTests.reference)
        #expect((report["cluster"] as? [String: Any])?["wire_dtype"] as? String == "bf16")
        // Through shared memory or over the socket, the same rounded bits arrive.
        let socket = Chorus.temporaryDirectory("bf16-socket")
        let overSocket = try Chorus.run(Chorus.shortRun(out: socket, steps: 8) + ["--workers", "2", "--wire-dtype", "bf16", "--no-shm"])
        #expect(overSocket.status == 0, "\(overSocket.error)")
        let socketReport = try Chorus.report(socket)
        #expect((report["cluster"] as? [String: Any])?["shared_memory_gradients"] as? Bool == true)
        #expect((socketReport["cluster"] as? [String: Any])?["shared_memory_gradients"] as? Bool == false)
        #expect(socketReport["params_sha256"] as? String == report["params_sha256"] as? String)
    }

    @Test func torchrunStyleRanksTrainTogether() throws {
        let port = String(Int.random(in: 40_001...50_000))
        let out = Chorus.temporaryDirectory("ranks")
        func rank(_ r: Int) throws -> (Process, Pipe, Pipe) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Chorus.binary)
            process.arguments = Chorus.shortRun(out: out, steps: 8)
            var environment = ProcessInfo.processInfo.environment
            environment["RANK"] = String(r); environment["WORLD_SIZE"] = "3"
            environment["MASTER_ADDR"] = "127.0.0.1"; environment["MASTER_PORT"] = port
            process.environment = environment
            let stdout = Pipe(), stderr = Pipe()
            process.standardOutput = stdout; process.standardError = stderr
            try process.run()
            return (process, stdout, stderr)
        }
        let workers = [try rank(1), try rank(2)]
        let coordinator = try rank(0)
        let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 180)
        for worker in workers { _ = Chorus.finish(worker.0, worker.1, worker.2, timeout: 30) }
        #expect(result.status == 0, "\(result.error)")
        let report = try Chorus.report(out)
        #expect(report["workers"] as? Int == 2)
        // 2 ranks of workers with --shards 4: the same bits as in-process with 4 shards.
        #expect(report["params_sha256"] as? String == DistributedTrainingTests.reference)
    }
}

/// The collapse monitor's scenario suite, run distributed (2 workers): every faulty config is
/// diagnosed with its cause (the file name's prefix) within 50 steps; no healthy one collapses.
@Suite(.serialized)
struct CollapseScenarioTests {
    static let directory = Chorus.repositoryRoot + "/scenarios"
    static let files: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        .filter { $0.hasSuffix(".json") }.sorted()

    @Test func theSuiteCoversEveryCauseEightHealthyRunsAndTenMidRunFaults() {
        let causes = Set(Self.files.map { String($0.split(separator: "-").first ?? "") })
        for cause in ["vanishing_gradients", "exploding_gradients", "dead_relu", "symmetric_weights", "bottleneck",
                      "unnormalized_inputs", "constant_labels", "loss_mismatch", "learning_rate_too_high", "nan_inf", "replica_fault",
                      "uninformative_labels"] {
            #expect(causes.contains(cause), "no scenario for \(cause)")
        }
        #expect(Self.files.filter { $0.hasPrefix("healthy--") }.count >= 8)
        #expect(Self.files.filter { !$0.hasPrefix("healthy--") }.count >= 12)
        // Faults that start mid-run, each with the step it begins in <name>.onset.
        let onsets = ((try? FileManager.default.contentsOfDirectory(atPath: Self.directory)) ?? []).filter { $0.hasSuffix(".onset") }
        #expect(onsets.count >= 10, "\(onsets)")
    }

    @Test(.needsFashionMNIST, arguments: files)
    func scenario(_ file: String) throws {
        let name = String(file.dropLast(5))
        let expected = String(name.components(separatedBy: "--")[0])
        let flagsPath = "\(Self.directory)/\(name).flags"
        let flags = ((try? String(contentsOfFile: flagsPath, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
        let out = Chorus.temporaryDirectory("scenario")
        let result = try Chorus.run(["train", "--config", "\(Self.directory)/\(file)", "--workers", "2", "--out", out, "--quiet"] + flags, timeout: 600)
        #expect(result.status == 0, "\(result.error)")
        let collapse = try Chorus.report(out)["collapse"] as? [String: Any] ?? [:]
        if expected == "healthy" {
            #expect(collapse["detected"] as? Bool == false, "\(name): \(collapse)")
        } else if let onset = Int(((try? String(contentsOfFile: "\(Self.directory)/\(name).onset", encoding: .utf8)) ?? "")
                    .trimmingCharacters(in: .whitespacesAndNewlines)) {
            // A fault that starts mid-run: found at or after its onset and within 20 steps, and
            // the top finding's onset_step no later than its detection.
            let step = collapse["step"] as? Int ?? -1
            #expect(collapse["cause"] as? String == expected, "\(name): \(collapse)")
            #expect(step >= onset && step - onset <= 20, "\(name): detected at \(step), onset \(onset): \(collapse)")
            let top = (collapse["causes"] as? [[String: Any]])?.first
            #expect((top?["onset_step"] as? Int).map { $0 <= step && $0 >= onset - 20 } == true, "\(name): \(collapse)")
        } else {
            #expect(collapse["cause"] as? String == expected, "\(name): \(collapse)")
            #expect((collapse["step"] as? Int ?? 999) <= 50, "\(name): detected late: \(collapse)")
        }
    }
}

@Suite(.serialized, .needsFashionMNIST)
struct ProbeBatchTests {
    func probeRows(_ arguments: [String]) throws -> [[String: Any]] {
        let out = Chorus.temporaryDirectory("probe")
        let result = try Chorus.run(arguments + ["--out", out, "--quiet", "--probe-every", "2"])
        #expect(result.status == 0, "\(result.error)")
        let text = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["probe_replicas"] != nil }
    }

    @Test func healthyReplicasAgreeOnTheProbeAndItsOutputsVary() throws {
        let rows = try probeRows(["train", "--workers", "2", "--max-steps", "6", "--batch-size", "64"])
        #expect(rows.count == 3)
        for row in rows {
            #expect(row["probe_replicas"] as? Int == 2)
            #expect(row["probe_replicas_agree"] as? Bool == true)
            #expect((row["probe_output_variance"] as? Double ?? 0) > 1e-6)
        }
    }

    @Test func aCollapsedModelHasNoVarianceAcrossProbeExamples() throws {
        let rows = try probeRows(["train", "--config", Chorus.repositoryRoot + "/scenarios/symmetric_weights--zero-init.json",
                                  "--workers", "2", "--max-steps", "6"])
        #expect(!rows.isEmpty)
        for row in rows { #expect((row["probe_output_variance"] as? Double ?? 1) < 1e-9) }
    }
}
