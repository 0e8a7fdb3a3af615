import Foundation
import ProcessTestSupport
import Testing

/// Bad files and broken outputs: a clear error or a survived fault, never a crash.
@Suite(.serialized)
struct HostileInputTests {
    /// Tiny IDX data whose test split has one label outside the model's classes.
    func dataWithBadTestLabel() throws -> String {
        let directory = Chorus.temporaryDirectory("badlabel")
        try writeTinyIDX(directory, count: 64, seed: 3)
        let path = directory + "/t10k-labels-idx1-ubyte"
        var labels = try Data(contentsOf: URL(fileURLWithPath: path))
        labels[8 + 7] = 255  // example 7
        try labels.write(to: URL(fileURLWithPath: path))
        return directory
    }

    @Test func aTestLabelOutsideTheModelsClassesIsAClearErrorInTrainAndEval() throws {
        let data = try dataWithBadTestLabel()
        let out = Chorus.temporaryDirectory("badlabel-out")
        let train = try Chorus.run(["train", "--data", data, "--max-steps", "2", "--batch-size", "16", "--out", out, "--quiet"])
        #expect(train.status == 1, "\(train.error)")
        #expect(train.error.contains("test data, example 7") && train.error.contains("label 255"), "\(train.error)")
        // eval of a good checkpoint on that data
        let good = Chorus.temporaryDirectory("goodlabel")
        try writeTinyIDX(good, count: 64, seed: 3)
        _ = try Chorus.run(["train", "--data", good, "--max-steps", "2", "--batch-size", "16", "--out", good + "/out", "--quiet"])
        let eval = try Chorus.run(["eval", good + "/out/latest.safetensors", "--data", data])
        #expect(eval.status == 1, "\(eval.error)")
        #expect(eval.error.contains("label 255"), "\(eval.error)")
    }

    /// A worker loads its own data (`--data`): its labels index the model's outputs, so it
    /// validates them itself instead of trusting that the coordinator's data was the same.
    @Test func aWorkerWhoseOwnDataHasALabelOutsideTheModelSaysSoAndExits() throws {
        let good = Chorus.temporaryDirectory("worker-good")
        try writeTinyIDX(good, count: 64, seed: 3)
        let bad = Chorus.temporaryDirectory("worker-bad")
        try writeTinyIDX(bad, count: 64, seed: 3)
        let path = bad + "/train-labels-idx1-ubyte"
        var labels = try Data(contentsOf: URL(fileURLWithPath: path))
        labels[8 + 5] = 255  // example 5
        try labels.write(to: URL(fileURLWithPath: path))
        let endpoint = "tcp://127.0.0.1:\(Int.random(in: 20_000...40_000))"
        let coordinator = try Chorus.start(["coordinator", "--bind", endpoint, "--expect", "1", "--data", good, "--max-steps", "2",
                                            "--batch-size", "16", "--out", Chorus.temporaryDirectory("worker-bad-out"), "--quiet"])
        let worker = try Chorus.run(["worker", "--connect", endpoint, "--data", bad], timeout: 60)
        coordinator.0.terminate()
        _ = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 30)
        #expect(worker.status != 0 && worker.status < 128, "\(worker.status) \(worker.error)")
        #expect(worker.error.contains("example 5") && worker.error.contains("label 255"), "\(worker.error)")
    }

    @Test(arguments: [("-1", "train"), ("1.5", "train"), ("7", "test")])
    func aCSVLabelThatIsNotAClassNamesItsFileAndLine(_ label: String, _ split: String) throws {
        let directory = Chorus.temporaryDirectory("csvlabel")
        // Line 1 the header, line 3 blank: the bad label is on line 5 of its file.
        let good = "a,b,label\n1,2,0\n\n3,4,1\n5,6,2\n"
        let bad = "a,b,label\n1,2,0\n\n3,4,1\n5,6,\(label)\n"
        try (split == "train" ? bad : good).write(toFile: directory + "/train.csv", atomically: true, encoding: .utf8)
        try (split == "test" ? bad : good).write(toFile: directory + "/test.csv", atomically: true, encoding: .utf8)
        try """
            {"model": {"input": [2], "layers": [{"type": "dense", "units": 3}]},
             "data": {"format": "csv", "train": "train.csv", "test": "test.csv"}}
            """.write(toFile: directory + "/run.json", atomically: true, encoding: .utf8)
        let result = try Chorus.run(["train", "--config", directory + "/run.json", "--max-steps", "2", "--batch-size", "2",
                                     "--out", directory + "/out", "--quiet"], timeout: 60)
        #expect(result.status == 1, "\(result.error)")
        #expect(result.error.contains("\(split).csv:5: label \(label)"), "\(result.error)")
        #expect(result.error.split(separator: "\n").count == 1, "\(result.error)")
    }

    @Test func aClosedStderrEndsNothing() throws {
        let data = Chorus.temporaryDirectory("closed-stderr")
        try writeTinyIDX(data, count: 256, seed: 1)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Chorus.binary)
        process.arguments = ["train", "--workers", "2", "--data", data, "--max-steps", "40", "--batch-size", "16", "--out", data + "/out"]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try pipe.fileHandleForReading.close()  // like `| head -1` after its line
        let end = ChildProcess.wait(process, timeout: 120)
        #expect(end == .exited(0), "\(end)")
        #expect(try Chorus.report(data + "/out")["status"] as? String == "completed")
        let segments = (try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []
        #expect(!segments.contains { $0.hasPrefix("chorus-\(process.processIdentifier)-") }, "\(segments)")
    }

    /// A run of 50 steps with checkpoints at 20, 40 and 50.
    func checkpointedRun() throws -> (data: String, out: String) {
        let data = Chorus.temporaryDirectory("ckpt")
        try writeTinyIDX(data, count: 512, seed: 2)
        let out = data + "/out"
        let run = try Chorus.run(["train", "--data", data, "--max-steps", "50", "--batch-size", "16", "--checkpoint-every", "20", "--out", out, "--quiet"])
        try #require(run.status == 0, "\(run.error)")
        return (data, out)
    }

    func flipBytes(_ path: String, count: Int) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        var state: UInt64 = 12345
        for _ in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let index = 4096 + Int(state >> 33) % (bytes.count - 4096)
            bytes[index] ^= 0xFF
        }
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    @Test func aCorruptLatestCheckpointFallsBackToThePreviousGoodOneWithTheSameBits() throws {
        let (data, out) = try checkpointedRun()
        let clean = try Chorus.run(["train", "--data", data, "--resume", out, "--max-steps", "60", "--batch-size", "16", "--out", out + "-clean", "--quiet"])
        #expect(clean.status == 0, "\(clean.error)")
        try flipBytes(out + "/latest.safetensors", count: 1000)
        let resumed = try Chorus.run(["train", "--data", data, "--resume", out, "--max-steps", "60", "--batch-size", "16", "--out", out, "--quiet"])
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.error.contains("latest.safetensors") && resumed.error.contains("corrupt") && resumed.error.contains("checkpoint-50.safetensors"), "\(resumed.error)")
        // checkpoint-50 holds the same state latest held: the same bits as resuming the intact file.
        #expect(try Chorus.report(out)["params_sha256"] as? String == (try Chorus.report(out + "-clean")["params_sha256"] as? String))
        // metrics.jsonl holds each step once.
        let steps = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["step"] as? Int
        }
        #expect(steps == Array(1...60))
    }

    @Test func everyCheckpointCorruptIsAClearError() throws {
        let (data, out) = try checkpointedRun()
        for name in try FileManager.default.contentsOfDirectory(atPath: out) where name.hasSuffix(".safetensors") {
            try flipBytes(out + "/" + name, count: 100)
        }
        let resumed = try Chorus.run(["train", "--data", data, "--resume", out, "--max-steps", "60", "--batch-size", "16", "--out", out, "--quiet"])
        #expect(resumed.status == 1)
        #expect(resumed.error.contains("corrupt"), "\(resumed.error)")
    }

    @Test func resumingWithOtherSettingsIsRefusedUnlessAskedForAndThenRecorded() throws {
        let (data, out) = try checkpointedRun()
        let changed = ["train", "--data", data, "--resume", out, "--max-steps", "60", "--batch-size", "32", "--seed", "4", "--out", out, "--quiet"]
        let refused = try Chorus.run(changed)
        #expect(refused.status == 1)
        #expect(refused.error.contains("training.batch_size, training.seed") && refused.error.contains("--resume-changed"), "\(refused.error)")
        let allowed = try Chorus.run(changed + ["--resume-changed"])
        #expect(allowed.status == 0, "\(allowed.error)")
        #expect(try Chorus.report(out)["resume_changes"] as? [String] == ["training.batch_size", "training.seed"])
    }
}
