#if canImport(Glibc)
import Glibc
#endif
import Checkpoint
import Cluster
import CollapseMonitor
import Config
import Data
import Foundation
import WireProtocol

/// Coverage-guided fuzzing of everything Chorus reads from outside: wire messages, configs,
/// safetensors checkpoints, IDX and CSV data files, shard-signal blobs (fuzz/README.md).
///
/// Built normally, `chorus-fuzz TARGET PATH...` replays files (or every file of directories)
/// through TARGET, which is how the committed corpora run as a regression check. Built by
/// `fuzz/run.sh` with `-sanitize=fuzzer,address` and `-DFUZZING`, it is a libFuzzer binary
/// for the target named by `CHORUS_FUZZ_TARGET`.
enum FuzzTarget: String, CaseIterable {
    case wire, config, safetensors, idx, csv, signals, npy, sealed

    /// The sealed target's fixed session keys (seeds are sealed under them).
    static let sealKeys = (up: [UInt8](repeating: 7, count: 32), down: [UInt8](repeating: 9, count: 32))

    /// Feeds one input to the reader; errors are the expected answer to bad input, a crash is a bug.
    func run(_ bytes: [UInt8]) {
        switch self {
        case .wire:
            _ = try? WireCodec.decode(frames: FuzzTarget.frames(bytes))
        case .config:
            _ = try? RunConfig.parse(jsonData: Data(bytes), source: "fuzz")
        case .safetensors:
            if let file = try? SafetensorsReader.decode(bytes) {
                for name in file.tensors.map(\.name) { _ = try? file.floatTensor(named: name) }
            }
        case .idx:
            let path = FuzzTarget.scratch(bytes)
            _ = try? IDXReader.readImages(path: path)
            _ = try? IDXReader.readLabels(path: path)
        case .csv:
            _ = try? CSVReader.load(path: FuzzTarget.scratch(bytes), name: "fuzz")
        case .signals:
            _ = try? ShardSignals.decode(bytes)
        case .npy:
            // The same bytes as an .npy array and as an .npz archive (its zip directory, members, inflate).
            _ = try? NumpyReader.decode(bytes, path: "fuzz")
            _ = try? NumpyReader.load(npz: FuzzTarget.scratch(bytes))
        case .sealed:
            // What arrives on the bulk channel, opened under a session's keys (then decoded as the
            // coordinator would), and the handshake's control messages, as frames.
            let frames = FuzzTarget.frames(bytes)
            let session = SealedSession(sendKey: FuzzTarget.sealKeys.down, receiveKey: FuzzTarget.sealKeys.up)
            if let opened = try? session.open(frames) { _ = try? WireCodec.decode(frames: opened) }
            _ = SealHandshake.helloNonce(frames)
            _ = SealHandshake.Reply(frames)
        }
    }

    /// Wire input: a count byte (1 + n % 4 frames), then each frame but the last as a
    /// little-endian u16 length and its bytes; the last frame is the rest.
    static func frames(_ bytes: [UInt8]) -> [Frame] {
        guard let first = bytes.first else { return [] }
        let count = 1 + Int(first) % 4
        var frames: [Frame] = [], offset = 1
        for _ in 0..<(count - 1) where offset + 2 <= bytes.count {
            let length = min(Int(bytes[offset]) | Int(bytes[offset + 1]) << 8, bytes.count - offset - 2)
            frames.append(Frame(bytes: Array(bytes[(offset + 2)..<(offset + 2 + length)])))
            offset += 2 + length
        }
        frames.append(Frame(bytes: Array(bytes[min(offset, bytes.count)...])))
        return frames
    }

    /// The inverse of `frames`, for seeds.
    static func input(frames: [Frame]) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(frames.count - 1)]
        for frame in frames.dropLast() {
            let frameBytes = frame.byteArray
            bytes += [UInt8(frameBytes.count & 0xFF), UInt8(frameBytes.count >> 8)] + frameBytes
        }
        return bytes + (frames.last?.byteArray ?? [])
    }

    /// The readers of files take a path: the input is written to one scratch file in /dev/shm.
    static func scratch(_ bytes: [UInt8]) -> String {
        let path = "/dev/shm/chorus-fuzz-\(getpid())"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }
}

#if FUZZING
typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: FuzzCallback) -> Int32

let fuzzTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["CHORUS_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        fputs("chorus-fuzz: set CHORUS_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n", stderr)
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzTarget.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// SwiftPM names an executable's entry point after its target; libFuzzer's driver runs from it.
@_cdecl("chorus_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    _ = fuzzTarget
    var count = argc, vector = argv
    return LLVMFuzzerRunDriver(&count, &vector, fuzzOneInput)
}
#else
@main
struct Replay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "seed", arguments.count == 2 { return writeSeeds(to: arguments[1]) }
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count >= 2 else {
            print("usage: chorus-fuzz TARGET PATH... (TARGET: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
            exit(2)
        }
        var files: [String] = []
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                files += ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            target.run([UInt8](data))
        }
        unlink("/dev/shm/chorus-fuzz-\(getpid())")
        print("chorus-fuzz \(name): \(files.count) inputs replayed, no crash")
    }

    /// Writes a few valid inputs of each target under DIRECTORY/TARGET (the committed seed corpora).
    static func writeSeeds(to directory: String) {
        func write(_ target: FuzzTarget, _ name: String, _ bytes: [UInt8]) {
            let folder = directory + "/" + target.rawValue
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: folder + "/" + name, contents: Data(bytes))
        }
        let payload = PayloadBuffer(floats: [1, -2, 3.5, 0])
        let messages: [(String, Message)] = [
            ("join", .join(Join(workerName: "host", buildVersion: "0.1", dataFingerprint: 7, pid: 42))),
            ("welcome", .welcome(Welcome(workerID: 1, configJSON: Array("{}".utf8), configHash: 9, heartbeatIntervalMs: 500,
                                         timeoutMs: 5000, parameterVersion: 3, kernel: "Haswell"))),
            ("reject", .reject(Reject(code: .wrongRun, message: "no"))),
            ("work", .work(Work(step: 2, epoch: 0, stepInEpoch: 2, parameterVersion: 2, shards: [0, 1], shardCount: 4,
                                flags: [.sumNodes], parameters: payload))),
            ("gradient", .gradient(Gradient(step: 2, shard: 0, exampleCount: 32, parameterVersion: 2, lossSum: 1.5, correct: 3,
                                            statistics: [0, 0, 0, 0], payload: payload, span: 2))),
            ("gradient-fp16", .gradient(Gradient(step: 2, shard: 3, exampleCount: 32, parameterVersion: 2, lossSum: 1.5, correct: 3,
                                                 dtype: .fp16, payload: PayloadBuffer(bytes: [0, 60, 0, 188])))),
            ("heartbeat", .heartbeat(Heartbeat(sequence: 5, sentAtNanos: 99))),
            ("leave", .leave(Leave(reason: "done"))),
        ]
        for (name, message) in messages { write(.wire, name, FuzzTarget.input(frames: WireCodec.encode(message, runID: 11, maxFrameBytes: 8))) }
        for (name, message) in messages where ["join", "heartbeat", "gradient"].contains(name) {
            // A fresh session each, so every seed is the session's first message.
            let fresh = SealedSession(sendKey: FuzzTarget.sealKeys.up, receiveKey: FuzzTarget.sealKeys.down)
            if let frames = try? fresh.seal(WireCodec.encode(message, runID: 11)) { write(.sealed, name, FuzzTarget.input(frames: frames)) }
        }
        write(.sealed, "hello", FuzzTarget.input(frames: SealHandshake.hello(nonce: [UInt8](repeating: 3, count: 16))))
        write(.sealed, "reply", FuzzTarget.input(frames: SealHandshake.Reply(nonce: [UInt8](repeating: 3, count: 16),
                                                                             bulk: ([UInt8](repeating: 1, count: 16), FuzzTarget.sealKeys.up, FuzzTarget.sealKeys.down, "tcp://10.0.0.1:5556")).frames))
        write(.sealed, "empty", FuzzTarget.input(frames: [Frame(bytes: Array("CHSL".utf8) + [255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0])]))
        write(.config, "small", Array(#"{"model": {"input": [4], "layers": [{"type": "dense", "units": 3, "activation": "relu"}, {"type": "dense", "units": 2}]}, "optimizer": {"name": "adam", "lr": 0.001, "clip_norm": 1.0}, "training": {"epochs": 1, "batch_size": 8, "seed": 3}}"#.utf8))
        if let bytes = try? SafetensorsWriter.encode([StoredTensor(name: "w", shape: [2, 2], values: [Float](arrayLiteral: 1, 2, 3, 4)),
                                                      StoredTensor(name: "step", shape: [], values: [Float](arrayLiteral: 7))],
                                                     metadata: ["config_hash": "1"]) {
            write(.safetensors, "two-tensors", bytes)
        }
        write(.idx, "images", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2] + (0..<8).map { UInt8($0 * 30) })
        write(.idx, "labels", [0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 9])
        write(.csv, "blobs", Array("x,y,label\n0.5,1,0\n-2,3.25,1\n1e-3,4,2\n".utf8))
        write(.signals, "empty", ShardSignals().encode())
        write(.signals, "some", ShardSignals(examples: 8, lossSum: 3.5, lossCount: 8).encode())
        print("chorus-fuzz: seeds written under \(directory)")
    }
}
#endif
