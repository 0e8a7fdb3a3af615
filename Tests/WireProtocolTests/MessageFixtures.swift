import WireProtocol
import struct TensorCore.DeterministicRNG

/// One example of every message kind, with payloads of awkward sizes.
enum MessageFixtures {
    static func floats(_ count: Int, seed: UInt64) -> [Float] {
        var rng = DeterministicRNG(seed)
        return (0..<count).map { _ in Float(Int64(bitPattern: rng.next()) % 1_000_000) / 1000 }
    }

    static var all: [Message] {
        [
            .join(Join(workerName: "host-ü/1234", buildVersion: "0.1.0+abc", dataFingerprint: 0xDEAD_BEEF_0123_4567,
                       pid: 4242, requestedWorkerID: -1)),
            .join(Join(workerName: "agent", buildVersion: "0.1.0", dataFingerprint: 1, pid: 7, requestedWorkerID: 2, peerEndpoint: "tcp://10.0.0.2:41000")),
            .welcome(Welcome(workerID: 3, configJSON: Array(#"{"model":{"input":[784]}}"#.utf8),
                             configHash: 0x1234_5678_9ABC_DEF0, heartbeatIntervalMs: 200, timeoutMs: 3000,
                             parameterVersion: 17)),
            .reject(Reject(code: .versionMismatch, message: "protocol version 2, coordinator speaks 1")),
            .work(Work(step: 51, epoch: 1, stepInEpoch: 4, parameterVersion: 50, shards: [0, 5, 7],
                       shardCount: 8, flags: [.audit, .probe], gradientDType: .bf16,
                       parameters: PayloadBuffer(floats: floats(1001, seed: 1)))),
            .work(Work(step: 52, epoch: 1, stepInEpoch: 5, parameterVersion: 51, shards: [],
                       shardCount: 8)),
            .gradient(Gradient(step: 51, shard: 5, exampleCount: 32, parameterVersion: 50, lossSum: 71.25,
                               correct: 29, dtype: .fp16, computeNanos: 1_234_567, statistics: [1, 2, 3, 250],
                               payload: PayloadBuffer.encoding(floats(777, seed: 2), as: .fp16))),
            .gradient(Gradient(step: 1, shard: 0, exampleCount: 0, parameterVersion: 0, lossSum: .nan,
                               correct: 0, payload: PayloadBuffer(floats: []))),
            .gradient(Gradient(step: 7, shard: 3, exampleCount: 64, parameterVersion: 6, lossSum: 12.5,
                               correct: 50, payload: PayloadBuffer(floats: []), sharedSlot: 2, sharedCRC: 0xDEAD_BEEF)),
            .heartbeat(Heartbeat(sequence: 99, sentAtNanos: 123_456_789_000)),
            .leave(Leave(reason: "run completed")),
            .chunk(ChunkData(role: .piece, step: 12, chunk: 41, shard: 4, span: 4, payload: PayloadBuffer(floats: floats(333, seed: 4)))),
            .chunk(ChunkData(role: .update, step: 12, chunk: 0, payload: PayloadBuffer(floats: floats(16_384, seed: 5)))),
            .chunkControl(ChunkControl(role: .report, step: 12, chunks: [1, 4, 7], values: [0.25, .nan, 3e-30])),
            .chunkControl(ChunkControl(role: .apply, step: 12, values: [1.5], learningRate: 0.001, optimizerStep: 13)),
            .chunkControl(ChunkControl(role: .table, step: 12, chunks: [3, 5, 3, 5, 3], peers: [3, 5], endpoints: ["tcp://10.0.0.2:41000", "tcp://10.0.0.3:41000"])),
            .chunkControl(ChunkControl(role: .traffic, step: 12, values: [1e6, 2.5e6])),
        ]
    }

    /// A gradient message whose payload spans several frames when split at `maxFrameBytes`.
    static func bigGradient(floatCount: Int) -> Message {
        .gradient(Gradient(step: 9, shard: 2, exampleCount: 64, parameterVersion: 8, lossSum: 3.5, correct: 40,
                           payload: PayloadBuffer(floats: floats(floatCount, seed: 3))))
    }
}
