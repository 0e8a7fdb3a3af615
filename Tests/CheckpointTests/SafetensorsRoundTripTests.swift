import Foundation
import Testing
@testable import Checkpoint

@Test func tensorsOfEveryDTypeAndTheMetadataSurviveAFileRoundTrip() throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("checkpoint-7.safetensors").path
    let tensors = [
        StoredTensor(name: "layers.0.weight", shape: [3, 2], values: [1, -2, 3.5, .leastNonzeroMagnitude, -.greatestFiniteMagnitude, 0] as [Float]),
        StoredTensor(name: "layers.0.bias", shape: [3], values: [0.1, 0.2, 0.3] as [Float]),
        StoredTensor(name: "optimizer.step", shape: [], values: [Int64(4680)]),
        StoredTensor(name: "rng.state", shape: [4], values: [0, 1, Int64.max, Int64.min]),
        StoredTensor(name: "mask", shape: [5], values: [0, 1, 255, 7, 3] as [UInt8]),
        StoredTensor(name: "loss.history", shape: [2], values: [0.25, 1e-300] as [Double]),
        StoredTensor(name: "empty", shape: [0, 4], values: [] as [Float]),
    ]
    let metadata = ["format": "chorus-1", "config_hash": "0123abcd", "note": "quote \" and \\ and\nnewline"]
    try SafetensorsWriter.write(tensors, metadata: metadata, to: path)
    let file = try SafetensorsReader.read(path: path)
    #expect(file.tensors == tensors)
    #expect(file.metadata == metadata)
    #expect(try file.tensor(named: "rng.state").values(as: Int64.self) == [0, 1, Int64.max, Int64.min])
    #expect(try file.floatTensor(named: "layers.0.bias") == NamedTensor(name: "layers.0.bias", shape: [3], values: [0.1, 0.2, 0.3]))
}

@Test func namedFloatTensorsRoundTripInTheirOrder() throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("latest.safetensors").path
    // Names deliberately out of alphabetical order: the file keeps the order given.
    let tensors = (0..<5).reversed().map { i in
        NamedTensor(name: "layers.\(i).weight", shape: [i + 1, 2], values: (0..<(2 * (i + 1))).map { Float($0) * 0.5 - Float(i) })
    }
    try SafetensorsWriter.write(tensors: tensors, to: path)
    let file = try SafetensorsReader.read(path: path)
    #expect(try file.tensors.map { try $0.namedTensor() } == tensors)
    #expect(file.metadata.isEmpty)
}

@Test func writingReplacesTheFileAndLeavesNoTemporaryFiles() throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("latest.safetensors").path
    try SafetensorsWriter.write(tensors: [NamedTensor(name: "a", shape: [1], values: [1])], to: path)
    try SafetensorsWriter.write(tensors: [NamedTensor(name: "b", shape: [2], values: [2, 3])], to: path)
    #expect(try SafetensorsReader.read(path: path).tensors.map(\.name) == ["b"])
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["latest.safetensors"])
}

@Test func writingIntoAMissingDirectoryFailsNamingThePath() {
    let error = checkpointError {
        try SafetensorsWriter.write(tensors: [NamedTensor(name: "a", shape: [1], values: [1])], to: "/nonexistent-dir/x.safetensors")
    }
    #expect(error?.description.hasPrefix("/nonexistent-dir/x.safetensors: cannot create") == true)
}

@Test func readingAsTheWrongDTypeIsAnError() throws {
    let file = try SafetensorsReader.decode(SafetensorsWriter.encode([StoredTensor(name: "step", shape: [], values: [Int64(3)])]), path: "run.safetensors")
    let error = checkpointError { _ = try file.floatTensor(named: "step") }
    #expect(error?.description == "run.safetensors: tensor \"step\" is I64, expected F32")
    let missing = checkpointError { _ = try file.tensor(named: "layers.0.weight") }
    #expect(missing?.description == "run.safetensors: no tensor named \"layers.0.weight\" (the file has 1: step)")
}

@Test func writerRejectsInconsistentTensors() {
    #expect(checkpointError { _ = try SafetensorsWriter.encode([StoredTensor(name: "w", dtype: .f32, shape: [2, 2], bytes: [0, 0, 0, 0])]) }?
        .description == "tensor \"w\": 4 bytes of data for shape [2, 2] of F32, expected 16")
    let twice = [StoredTensor(name: "w", shape: [1], values: [Float(1)]), StoredTensor(name: "w", shape: [1], values: [Float(2)])]
    #expect(checkpointError { _ = try SafetensorsWriter.encode(twice) }?.description == "tensor \"w\": the name is used twice")
    #expect(checkpointError { _ = try SafetensorsWriter.encode([StoredTensor(name: "__metadata__", shape: [], values: [Float(1)])]) } != nil)
}
