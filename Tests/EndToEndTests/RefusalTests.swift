import Foundation
import Testing

/// Writes a tiny IDX data set (plain files) into `directory`, `count` 28×28 images.
func writeTinyIDX(_ directory: String, count: Int, seed: UInt8) throws {
    func header(_ magic: UInt32, _ dims: [UInt32]) -> [UInt8] {
        ([magic] + dims).flatMap { value in withUnsafeBytes(of: value.bigEndian) { Array($0) } }
    }
    let pixels = (0..<(count * 784)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    let labels = (0..<count).map { UInt8($0 % 10) }
    for prefix in ["train", "t10k"] {
        try Data(header(0x0000_0803, [UInt32(count), 28, 28]) + pixels).write(to: URL(fileURLWithPath: "\(directory)/\(prefix)-images-idx3-ubyte"))
        try Data(header(0x0000_0801, [UInt32(count)]) + labels).write(to: URL(fileURLWithPath: "\(directory)/\(prefix)-labels-idx1-ubyte"))
    }
}

@Suite(.serialized)
struct RefusalTests {
    /// A coordinator on an ipc socket waiting for one worker, for a few seconds.
    func coordinator(_ name: String, data: String) throws -> (Process, Pipe, Pipe, String) {
        let endpoint = "ipc://\(NSTemporaryDirectory())chorus-e2e-\(name)-\(UUID().uuidString.prefix(6)).sock"
        let out = Chorus.temporaryDirectory(name)
        let started = try Chorus.start(["coordinator", "--bind", endpoint, "--expect", "1", "--max-steps", "2", "--batch-size", "8",
                                        "--data", data, "--out", out, "--quiet"])
        return (started.0, started.1, started.2, endpoint)
    }

    @Test func workerWithOtherDataIsRefusedOnBothSides() throws {
        let mine = Chorus.temporaryDirectory("data-a"), theirs = Chorus.temporaryDirectory("data-b")
        try writeTinyIDX(mine, count: 40, seed: 1)
        try writeTinyIDX(theirs, count: 40, seed: 2)
        let (process, stdout, stderr, endpoint) = try coordinator("fingerprint", data: mine)
        let worker = try Chorus.run(["worker", "--connect", endpoint, "--data", theirs], timeout: 60)
        #expect(worker.status != 0)
        #expect(worker.error.contains("data fingerprint"), "\(worker.error)")
        process.terminate()
        let coordinatorResult = Chorus.finish(process, stdout, stderr, timeout: 20)
        #expect(coordinatorResult.error.contains("refused worker"), "\(coordinatorResult.error)")
    }

    @Test func workerOfAnotherProtocolVersionIsRefused() throws {
        let mine = Chorus.temporaryDirectory("data-v")
        try writeTinyIDX(mine, count: 40, seed: 1)
        let (process, stdout, stderr, endpoint) = try coordinator("version", data: mine)
        let worker = try Chorus.run(["worker", "--connect", endpoint, "--pretend-protocol-version", "99"], timeout: 60)
        #expect(worker.status != 0)
        #expect(worker.error.contains("protocol version 99"), "\(worker.error)")
        process.terminate()
        let coordinatorResult = Chorus.finish(process, stdout, stderr, timeout: 20)
        #expect(coordinatorResult.error.contains("protocol version 99"), "\(coordinatorResult.error)")
    }

    @Test func matchingWorkerTrainsWithTheStandaloneCoordinator() throws {
        let mine = Chorus.temporaryDirectory("data-ok")
        try writeTinyIDX(mine, count: 40, seed: 1)
        let (process, stdout, stderr, endpoint) = try coordinator("standalone", data: mine)
        let worker = try Chorus.run(["worker", "--connect", endpoint], timeout: 120)
        let coordinatorResult = Chorus.finish(process, stdout, stderr, timeout: 60)
        #expect(coordinatorResult.status == 0, "\(coordinatorResult.error)")
        #expect(worker.status == 0, "\(worker.error)")
    }

    @Test func unknownConfigKeyIsOneClearLine() throws {
        let directory = Chorus.temporaryDirectory("config")
        let path = directory + "/bad.json"
        try #"{"model": {"input": [784], "layers": [{"type": "dense", "units": 10, "activaton": "relu"}]}}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let result = try Chorus.run(["train", "--config", path, "--out", directory])
        #expect(result.status != 0)
        #expect(result.error.contains("activaton"), "\(result.error)")
        #expect(result.error.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
    }

    @Test func truncatedDataFileIsNamed() throws {
        let directory = Chorus.temporaryDirectory("truncated")
        try writeTinyIDX(directory, count: 40, seed: 1)
        let path = directory + "/train-images-idx3-ubyte"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        let result = try Chorus.run(["train", "--data", directory, "--out", directory + "/out", "--max-steps", "1"])
        #expect(result.status != 0)
        #expect(result.error.contains("train-images-idx3-ubyte") && result.error.contains("truncated"), "\(result.error)")
    }

    @Test func badFlagsAreRefused() throws {
        let out = Chorus.temporaryDirectory("flags")
        for arguments in [["train", "--workers", "-1"], ["train", "--monitor", "sometimes"], ["train", "--fault", "explode:worker=1"],
                          ["train", "--workers", "2", "--fault", "kill:worker=1"], ["train", "--wire-dtype", "fp8"]] {
            let result = try Chorus.run(arguments + ["--out", out, "--max-steps", "1"], timeout: 60)
            #expect(result.status != 0, "\(arguments) should fail")
            #expect(!result.error.isEmpty)
        }
    }

    /// Every committed fuzzing input (fuzz/corpus), crashes found included, replays without a crash.
    @Test(arguments: ["wire", "config", "safetensors", "idx", "csv", "signals", "npy", "sealed"])
    func fuzzCorporaReplayWithoutACrash(target: String) throws {
        let binary = URL(fileURLWithPath: Chorus.binary).deletingLastPathComponent().appendingPathComponent("chorus-fuzz").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            #expect(!Chorus.isCI, "chorus-fuzz is not built next to \(Chorus.binary)")
            return
        }
        let replay = try shell("'\(binary)' \(target) '\(Chorus.repositoryRoot)/fuzz/corpus/\(target)'", timeout: 120)
        #expect(replay.status == 0, "\(replay.output)")
        #expect(replay.output.contains("no crash") && !replay.output.contains(" 0 inputs"), "\(replay.output)")
    }

    @Test(.needsFashionMNIST) func checkpointsLoadInPythonSafetensors() throws {
        guard try shell("python3 -c 'import safetensors'", timeout: 60).status == 0 else {
            #expect(!Chorus.isCI, "CI must install safetensors (scripts/setup.sh)")
            return
        }
        let out = Chorus.temporaryDirectory("safetensors")
        let result = try Chorus.run(["train", "--workers", "0", "--max-steps", "2", "--out", out, "--quiet"])
        #expect(result.status == 0, "\(result.error)")
        // Its listing is captured, not printed: test output is the test runner's alone.
        let check = try shell("python3 '\(Chorus.repositoryRoot)/scripts/check_safetensors.py' '\(out)/latest.safetensors'"
                              + " --expect layers.0.weight:256,784 --expect layers.0.bias:256"
                              + " --expect layers.1.weight:128,256 --expect layers.2.weight:10,128", timeout: 120)
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("layers.0.weight float32 256,784"), "\(check.output)")
    }
}

@Suite(.serialized)
struct CurveTests {
    @Test func onlyWorkersWithTheServerKeyCanTrain() throws {
        let directory = Chorus.temporaryDirectory("curve")
        let keyFile = directory + "/coordinator.key"
        let keygen = try Chorus.run(["keygen", "--out", keyFile])
        #expect(keygen.status == 0, "\(keygen.error)")
        let publicKey = keygen.output.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "public: ", with: "")
        #expect(publicKey.count == 40)
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attributes[.posixPermissions] as? Int ?? 0) & 0o077 == 0, "the key file must not be readable by others")

        try writeTinyIDX(directory, count: 40, seed: 1)
        let port = Int.random(in: 50_001...60_000)
        let (process, stdout, stderr) = try Chorus.start(["coordinator", "--bind", "tcp://127.0.0.1:\(port)", "--expect", "1",
                                                          "--max-steps", "2", "--batch-size", "8", "--data", directory,
                                                          "--out", directory + "/out", "--quiet", "--curve-keys", keyFile])
        // Without the key the worker never hears the coordinator.
        let stranger = try Chorus.run(["worker", "--connect", "tcp://127.0.0.1:\(port)", "--timeout-ms", "1500", "--coordinator-timeout-ms", "1500"], timeout: 60)
        #expect(stranger.status != 0)
        #expect(stranger.error.contains("did not answer the join") && stranger.error.contains("--curve-server-key"), "\(stranger.error)")
        // With the coordinator's public key it trains.
        // `=`: a Z85 key may start with "-", which would read as an option.
        let member = try Chorus.run(["worker", "--connect", "tcp://127.0.0.1:\(port)", "--curve-server-key=\(publicKey)"], timeout: 120)
        let coordinator = Chorus.finish(process, stdout, stderr, timeout: 60)
        #expect(member.status == 0, "\(member.error)")
        #expect(coordinator.status == 0, "\(coordinator.error)")
    }
}

extension CurveTests {
    /// Local workers over ipc and tcp, sealed or all through libzmq's CURVE: the in-process bits.
    @Test func encryptedLocalWorkersGiveTheInProcessBitsSealedOrNot() throws {
        let directory = Chorus.temporaryDirectory("curve-bits")
        let keyFile = directory + "/coordinator.key"
        #expect(try Chorus.run(["keygen", "--out", keyFile]).status == 0)
        try writeTinyIDX(directory, count: 64, seed: 3)
        let common = ["--shards", "2", "--max-steps", "6", "--batch-size", "16", "--data", directory, "--quiet", "--seed", "5"]
        func run(_ name: String, _ extra: [String]) throws -> [String: Any] {
            let result = try Chorus.run(["train", "--out", directory + "/" + name] + common + extra, timeout: 180)
            #expect(result.status == 0, "\(name): \(result.error)")
            return try Chorus.report(directory + "/" + name)
        }
        let reference = try run("in-process", ["--workers", "0"])["params_sha256"] as? String
        #expect(reference != nil)
        for (name, extra, encryption) in [
            ("ipc-sealed", ["--workers", "2", "--curve-keys", keyFile], "curve+aes-256-gcm"),
            ("tcp-sealed", ["--workers", "2", "--tcp", "--curve-keys", keyFile], "curve+aes-256-gcm"),
            ("tcp-curve", ["--workers", "2", "--tcp", "--no-shm", "--curve-keys", keyFile, "--curve-bulk", "off"], "curve"),
            ("tcp-sealed-no-shm", ["--workers", "2", "--tcp", "--no-shm", "--curve-keys", keyFile, "--curve-bulk", "any"], "curve+aes-256-gcm"),
        ] {
            let report = try run(name, extra)
            #expect(report["params_sha256"] as? String == reference, "\(name)")
            let cluster = report["cluster"] as? [String: Any] ?? [:]
            #expect(cluster["encryption"] as? String == encryption, "\(name): \(cluster["encryption"] ?? "none")")
            #expect(cluster["dropped_messages"] as? Int == 0, "\(name)")
            // Each local worker's connection got a session, or none when everything stayed on CURVE.
            let sessions = cluster["sealed_sessions"] as? Int ?? -1
            #expect(encryption == "curve" ? sessions == 0 : sessions >= 2, "\(name): \(sessions) sealed sessions")
        }
        let bad = try Chorus.run(["train", "--workers", "1", "--curve-keys", keyFile, "--curve-bulk", "7x", "--out", directory + "/bad"] + common)
        #expect(bad.status != 0 && bad.error.contains("--curve-bulk 7x"), "\(bad.error)")
    }
}

@Suite(.serialized)
struct OtherRunTests {
    @Test func aWorkerFromAnotherRunIsRefusedAndTheNewRunIsUnaffected() throws {
        let directory = Chorus.temporaryDirectory("other-run")
        try writeTinyIDX(directory, count: 40, seed: 1)
        let endpoint = "tcp://127.0.0.1:\(Int.random(in: 30_001...40_000))"
        let common = ["--bind", endpoint, "--expect", "1", "--batch-size", "8", "--data", directory, "--quiet"]
        // Run A, long enough to be killed mid-run; its worker stays and outlives it.
        let (a, aOut, aErr) = try Chorus.start(["coordinator"] + common + ["--epochs", "10000", "--out", directory + "/a"])
        let (worker, workerOut, workerErr) = try Chorus.start(["worker", "--connect", endpoint, "--timeout-ms", "30000"])
        Thread.sleep(forTimeInterval: 3)
        kill(a.processIdentifier, SIGKILL)
        _ = Chorus.finish(a, aOut, aErr, timeout: 10)
        // Run B on the same endpoint: the old worker's messages carry run A's id.
        let (b, bOut, bErr) = try Chorus.start(["coordinator"] + common + ["--max-steps", "2", "--out", directory + "/b"])
        let refused = Chorus.finish(worker, workerOut, workerErr, timeout: 30)
        #expect(refused.status == 2, "\(refused.error)")
        #expect(refused.error.contains("your run") && refused.error.contains("is over"), "\(refused.error)")
        // A fresh worker joins run B, which completes.
        let fresh = try Chorus.run(["worker", "--connect", endpoint], timeout: 60)
        let resultB = Chorus.finish(b, bOut, bErr, timeout: 60)
        #expect(fresh.status == 0, "\(fresh.error)")
        #expect(resultB.status == 0, "\(resultB.error)")
        #expect(resultB.error.contains("another run"), "\(resultB.error)")
        #expect(try Chorus.report(directory + "/b")["status"] as? String == "completed")
    }
}
