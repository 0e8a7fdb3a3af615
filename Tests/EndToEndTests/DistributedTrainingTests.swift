import Foundation
import Testing

/// Real processes, real ZeroMQ sockets, the real Fashion-MNIST files.
@Suite(.serialized, .needsFashionMNIST)
struct DistributedTrainingTests {
    /// params_sha256 of an in-process run with 4 shards: the reference every distributed run must match.
    static let reference: String = {
        let out = Chorus.temporaryDirectory("reference")
        let result = try? Chorus.run(Chorus.shortRun(out: out, steps: 8) + ["--workers", "0"])
        guard result?.status == 0, let report = try? Chorus.report(out) else { return "reference run failed: \(result?.error ?? "")" }
        return report["params_sha256"] as? String ?? "missing"
    }()

    func hash(workers: Int, extra: [String] = [], steps: Int = 8) throws -> (String?, [String: Any], Chorus.Result) {
        let out = Chorus.temporaryDirectory("w\(workers)")
        let result = try Chorus.run(Chorus.shortRun(out: out, steps: steps) + ["--workers", String(workers)] + extra)
        let report = (try? Chorus.report(out)) ?? [:]
        return (report["params_sha256"] as? String, report, result)
    }

    @Test(arguments: [1, 2, 4])
    func sameParametersWhateverTheWorkerCount(workers: Int) throws {
        let (hash, report, result) = try hash(workers: workers)
        #expect(result.status == 0, "\(result.error)")
        #expect(report["status"] as? String == "completed")
        #expect(hash == Self.reference)
        // Audits are on by default (step 0 is one): they cost time, never bits.
        let cluster = report["cluster"] as? [String: Any]
        // Local workers hand their gradients over in shared memory: none cross the socket.
        #expect(cluster?["shared_memory_gradients"] as? Bool == true)
        #expect((cluster?["shared_memory_gradient_bytes"] as? Int ?? 0) > 0)
        #expect(cluster?["bytes_received"] as? Int == 0)
        if workers >= 2 {
            #expect((cluster?["audits"] as? Int ?? 0) >= 1)
            #expect(cluster?["audit_mismatches"] as? Int == 0)
        }
    }

    @Test func parametersOverTheSocketInsteadOfSharedMemoryGiveTheSameParameters() throws {
        let (hash, report, result) = try hash(workers: 2, extra: ["--no-shm"])
        #expect(result.status == 0, "\(result.error)")
        let cluster = report["cluster"] as? [String: Any]
        #expect(cluster?["shared_memory_parameters"] as? Bool == false)
        #expect(cluster?["shared_memory_gradients"] as? Bool == false)
        #expect((cluster?["bytes_sent"] as? Int ?? 0) > 0)
        #expect(hash == Self.reference)
    }

    @Test func localWorkersReadParametersFromSharedMemory() throws {
        let (hash, report, result) = try hash(workers: 2)
        #expect(result.status == 0, "\(result.error)")
        let cluster = report["cluster"] as? [String: Any]
        #expect(cluster?["shared_memory_parameters"] as? Bool == true)
        #expect(cluster?["bytes_sent"] as? Int == 0)
        #expect((cluster?["shared_memory_bytes"] as? Int ?? 0) > 0)
        #expect(hash == Self.reference)
        // The run's segment (named after its run id) is removed when the run ends.
        let runID = UInt64(report["run_id"] as? String ?? "") ?? 0
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm"))?
            .filter { $0.hasPrefix("chorus-") && $0.hasSuffix("-\(runID % 1_000_000)") } ?? []
        #expect(runID != 0)
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test func workerKilledMidRunGivesTheSameParameters() throws {
        let (hash, report, result) = try hash(workers: 2, extra: ["--fault", "kill:worker=1,step=3"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.error.contains("SIGKILL worker 1"))
        let cluster = report["cluster"] as? [String: Any]
        #expect(cluster?["workers_killed"] as? Int == 1)
        #expect(hash == Self.reference)
    }

    @Test func corruptedPayloadsAreRejectedAndRecomputed() throws {
        let (hash, report, result) = try hash(workers: 2, extra: ["--fault", "corrupt:worker=0,rate=0.5"])
        #expect(result.status == 0, "\(result.error)")
        let cluster = report["cluster"] as? [String: Any]
        #expect((cluster?["corrupt_payloads"] as? Int ?? 0) > 0)
        #expect(hash == Self.reference)
    }

    @Test func aWorkerAnAuditProvesWrongIsQuarantinedAndItsResultsUndone() throws {
        let (hash, report, result) = try hash(workers: 2, extra: ["--fault", "bitflip:worker=1,rate=0.001", "--audit-every", "1"])
        #expect(result.status == 0, "\(result.error)")
        #expect(report["status"] as? String == "completed")
        let cluster = report["cluster"] as? [String: Any]
        #expect((cluster?["audit_mismatches"] as? Int ?? 0) > 0)
        // The coordinator referees each mismatch with its own computation of the shard.
        let collapse = report["collapse"] as? [String: Any]
        #expect(collapse?["cause"] as? String == "replica_fault")
        #expect(collapse?["replica"] as? Int == 1, "\(collapse ?? [:])")
        #expect(result.error.contains("so worker 1 is at fault"), "\(result.error)")
        // Quarantined (its slot not refilled), the run back to a state before its results, and
        // the steps computed again without it: the fault-free parameters.
        let quarantined = cluster?["quarantined"] as? [[String: Any]] ?? []
        #expect(quarantined.count == 1, "\(cluster ?? [:])")
        #expect(quarantined.first?["worker"] as? Int == 1)
        #expect(quarantined.first?["rewound_to_step"] as? Int == 0)
        #expect(cluster?["workers_restarted"] as? Int == 0)
        #expect(result.error.contains("quarantined worker 1"), "\(result.error)")
        #expect(hash == Self.reference)
    }

    @Test func valuesThatChangeAfterTheyWereComputedAreRecomputedAndTheWorkerNamed() throws {
        // `memflip`: bad memory between the computation and the checksum. The worker's own norm
        // of its gradient travels in its signals; the coordinator sees another norm arrive, has
        // the shard recomputed, never sums it, and the monitor names the worker at once.
        let (hash, report, result) = try hash(workers: 2, extra: ["--fault", "memflip:worker=1,rate=0.001"])
        #expect(result.status == 0, "\(result.error)")
        let cluster = report["cluster"] as? [String: Any]
        #expect((cluster?["corrupt_payloads"] as? Int ?? 0) > 0, "\(cluster ?? [:])")
        #expect((cluster?["audit_mismatches"] as? Int ?? -1) == 0, "caught before any audit could see it")
        let collapse = report["collapse"] as? [String: Any]
        #expect(collapse?["cause"] as? String == "replica_fault" && collapse?["replica"] as? Int == 1, "\(collapse ?? [:])")
        #expect(collapse?["step"] as? Int == 1)
        #expect(result.error.contains("its values changed after they were computed"), "\(result.error)")
        #expect(hash == Self.reference)
    }

    @Test func aWorkerProvenWrongMidRunIsUndoneBackToItsLastCleanAudit() throws {
        // 3 workers, 4 shards, an audit every 2 steps (shards 0, 1, 2, 3 in turn): worker 2 is
        // audited clean at step 4, turns bad at step 6 and is caught there, so the run goes back
        // to the state before step 5 — not to the start — and computes on with workers 0 and 1.
        let steps = 12
        let referenceOut = Chorus.temporaryDirectory("midrun-reference")
        let clean = try Chorus.run(Chorus.shortRun(out: referenceOut, steps: steps) + ["--workers", "0", "--checkpoint-every", "3"])
        #expect(clean.status == 0, "\(clean.error)")
        let reference = try Chorus.report(referenceOut)["params_sha256"] as? String
        let out = Chorus.temporaryDirectory("midrun")
        let result = try Chorus.run(Chorus.shortRun(out: out, steps: steps)
            + ["--workers", "3", "--fault", "bitflip:worker=2,rate=0.001,step=6", "--audit-every", "2", "--checkpoint-every", "3"])
        #expect(result.status == 0, "\(result.error)")
        let report = try Chorus.report(out)
        let cluster = report["cluster"] as? [String: Any]
        let quarantined = cluster?["quarantined"] as? [[String: Any]] ?? []
        #expect(quarantined.map { $0["worker"] as? Int } == [2], "\(cluster ?? [:])")
        #expect(quarantined.first?["step"] as? Int == 6)
        #expect(quarantined.first?["rewound_to_step"] as? Int == 5)
        #expect(cluster?["recomputed_steps"] as? Int == 2)
        #expect(report["params_sha256"] as? String == reference)
        // metrics.jsonl holds each step once, in order: the undone steps' rows were cut.
        let rows = try String(contentsOfFile: "\(out)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let stepsWritten = rows.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }.compactMap { $0["step"] as? Int }
        #expect(stepsWritten == Array(1...steps))
        // The checkpoint written from the undone steps (step 6) was replaced by a recomputed one.
        let sums = try ["\(out)/checkpoint-6.safetensors", "\(referenceOut)/checkpoint-6.safetensors"].map(Self.tensorsSHA256)
        #expect(sums[0] == sums[1])
    }

    /// The `tensors_sha256` a checkpoint's metadata gives for its tensors.
    static func tensorsSHA256(_ path: String) throws -> String? {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any]
        return (header?["__metadata__"] as? [String: String])?["tensors_sha256"]
    }

    @Test func garbageOnTheCoordinatorPortIsIgnored() throws {
        let port = Int.random(in: 20_000...40_000)
        let out = Chorus.temporaryDirectory("garbage")
        let (process, stdout, stderr) = try Chorus.start(Chorus.shortRun(out: out, steps: 8) + ["--workers", "2", "--endpoint", "tcp://127.0.0.1:\(port)"])
        // Raw bytes that are not ZMTP, sent repeatedly while the run is going.
        for attempt in 0..<20 {
            usleep(150_000)
            if let fd = Chorus.connectLoopback(port: port) {
                var junk = (0..<512).map { _ in UInt8.random(in: 0...255) }
                if attempt % 2 == 0 { junk.replaceSubrange(0..<10, with: [0xFF, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x7F]) }  // a ZMTP-looking greeting
                _ = write(fd, &junk, junk.count)
                close(fd)
            }
        }
        let result = Chorus.finish(process, stdout, stderr)
        #expect(result.status == 0, "\(result.error)")
        let report = try Chorus.report(out)
        #expect(report["params_sha256"] as? String == Self.reference)
    }

    /// Issue 13's attack: a peer completes the NULL handshake and sends 200 MiB frames with MORE
    /// set and never a last frame. libzmq would buffer all of it (ZMQ_MAXMSGSIZE bounds a frame,
    /// not a message); the connection guard closes the connection instead, the coordinator's
    /// memory stays bounded and the run's bits are untouched.
    @Test func aPeerThatNeverFinishesAMessageIsCutOffBeforeItCostsMemory() throws {
        let steps = 60
        let referenceOut = Chorus.temporaryDirectory("flood-reference")
        let reference = try Chorus.run(Chorus.shortRun(out: referenceOut, steps: steps) + ["--workers", "0"])
        #expect(reference.status == 0, "\(reference.error)")
        let port = Int.random(in: 20_000...40_000)
        let out = Chorus.temporaryDirectory("flood")
        let (process, stdout, stderr) = try Chorus.start(Chorus.shortRun(out: out, steps: steps) + ["--workers", "2", "--endpoint", "tcp://127.0.0.1:\(port)"])
        var fd: Int32 = -1
        for _ in 0..<200 where fd < 0 {
            fd = RawZMTP.connect(port: port)
            if fd < 0 { usleep(20_000) }
        }
        #expect(fd >= 0, "could not connect to the coordinator on port \(port)")
        let rssBefore = Chorus.residentBytes(pid: process.processIdentifier)
        var sent = 0
        if fd >= 0 {
            sent = RawZMTP.floodUnfinishedMessage(fd: fd, frameBytes: 200 << 20, frames: 5)
            close(fd)
        }
        let peak = Chorus.peakResidentBytes(pid: process.processIdentifier)
        let result = Chorus.finish(process, stdout, stderr)
        #expect(result.status == 0, "\(result.error)")
        // Cut off well before one 200 MiB frame, let alone five.
        #expect(sent > 0 && sent < 64 << 20, "the coordinator took \(sent) bytes of an unfinished message")
        if let rssBefore, let peak { #expect(peak < rssBefore + (128 << 20), "coordinator RSS \(rssBefore) → peak \(peak)") }
        #expect(result.error.contains("closed the connection from 127.0.0.1"), "\(result.error)")
        let report = try Chorus.report(out)
        #expect(report["params_sha256"] as? String == (try Chorus.report(referenceOut))["params_sha256"] as? String)
        #expect((report["cluster"] as? [String: Any])?["connections_closed"] as? Int == 1)
    }

    @Test func resumingFromACheckpointGivesTheSameParameters() throws {
        let out = Chorus.temporaryDirectory("resume")
        let first = try Chorus.run(Chorus.shortRun(out: out, steps: 4) + ["--workers", "0"])
        #expect(first.status == 0, "\(first.error)")
        let second = try Chorus.run(["train", "--resume", out, "--max-steps", "8", "--out", out, "--quiet", "--workers", "2"])
        #expect(second.status == 0, "\(second.error)")
        #expect(try Chorus.report(out)["params_sha256"] as? String == Self.reference)
    }
}

/// A hand-written ZMTP 3.0 peer (NULL mechanism) that libzmq takes for a DEALER.
enum RawZMTP {
    /// A TCP connection to 127.0.0.1:`port` with the greeting and READY sent; -1 if refused.
    static func connect(port: Int) -> Int32 {
        guard let fd = Chorus.connectLoopback(port: port) else { return -1 }
        // A send that cannot go on for 2 s ends the flood (a peer that closed its side but never
        // read the rest leaves the window shut).
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // Greeting: signature, version 3.0, mechanism NULL, as-server 0, filler.
        var greeting: [UInt8] = [0xFF] + [UInt8](repeating: 0, count: 8) + [0x7F, 3, 0]
        greeting += Array("NULL".utf8) + [UInt8](repeating: 0, count: 16) + [0] + [UInt8](repeating: 0, count: 31)
        // READY command with Socket-Type DEALER.
        var body: [UInt8] = [5] + Array("READY".utf8) + [11] + Array("Socket-Type".utf8) + [0, 0, 0, 6] + Array("DEALER".utf8)
        body = [0x04, UInt8(body.count)] + body
        guard send(fd, greeting + body) else { close(fd); return -1 }
        return fd
    }

    /// Sends `frames` frames of `frameBytes` each with MORE set (the message never ends); returns
    /// the bytes written before the peer closed the connection.
    static func floodUnfinishedMessage(fd: Int32, frameBytes: Int, frames: Int) -> Int {
        let chunk = [UInt8](repeating: 0x5A, count: 1 << 20)
        var written = 0
        for _ in 0..<frames {
            var header: [UInt8] = [0x03]  // MORE | LONG
            header += (0..<8).reversed().map { UInt8(truncatingIfNeeded: UInt64(frameBytes) >> (8 * UInt64($0))) }
            guard send(fd, header) else { return written }
            var left = frameBytes
            while left > 0 {
                let n = min(left, chunk.count)
                guard send(fd, Array(chunk[0..<n])) else { return written }
                written += n
                left -= n
            }
        }
        return written
    }

    private static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
