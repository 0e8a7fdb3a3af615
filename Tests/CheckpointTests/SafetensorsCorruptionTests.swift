import Foundation
import Testing
@testable import Checkpoint

private func decodeError(_ bytes: [UInt8]) -> String? {
    checkpointError { _ = try SafetensorsReader.decode(bytes, path: "bad.safetensors") }?.description
}

private let validHeader = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

@Test func missingFileIsNamed() {
    #expect(checkpointError { _ = try SafetensorsReader.read(path: "/nonexistent/latest.safetensors") }?.description
        == "/nonexistent/latest.safetensors: no such checkpoint file")
}

@Test func fileShorterThanTheLengthPrefixIsRejected() {
    #expect(decodeError([1, 2, 3]) == "bad.safetensors: not a safetensors file: 3 bytes, shorter than the 8-byte header length")
}

@Test func headerLengthBeyondTheFileIsRejected() {
    let bytes = handMadeFile(header: validHeader, data: [])
    #expect(decodeError(Array(bytes[0..<20]))
        == "bad.safetensors: not a safetensors file: header length 54 exceeds the 12 bytes after it (truncated or not safetensors)")
}

@Test func headerThatIsNotJSONIsRejected() {
    #expect(decodeError(handMadeFile(header: "{not json}", data: []))?.hasPrefix("bad.safetensors: invalid safetensors header: not valid JSON") == true)
    #expect(decodeError(handMadeFile(header: "[1, 2]  ", data: []))
        == "bad.safetensors: invalid safetensors header: the header does not start with '{' (not a safetensors file?)")
    #expect(decodeError(handMadeFile(header: #"{"__metadata__": {"k": 1}}"#, data: []))
        == "bad.safetensors: invalid safetensors header: __metadata__ value of \"k\" is not a string")
}

@Test func malformedTensorEntriesAreRejected() {
    #expect(decodeError(handMadeFile(header: #"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)))
        == "bad.safetensors: tensor \"w\": missing or non-string \"dtype\"")
    #expect(decodeError(handMadeFile(header: #"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)))
        == "bad.safetensors: tensor \"w\": \"shape\" is not a list of non-negative integers")
    #expect(decodeError(handMadeFile(header: #"{"w":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, data: Array(repeating: 0, count: 4)))
        == "bad.safetensors: tensor \"w\": \"shape\" is not a list of non-negative integers")
    #expect(decodeError(handMadeFile(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, data: Array(repeating: 0, count: 8)))
        == "bad.safetensors: tensor \"w\": \"data_offsets\" is not a pair of non-negative integers")
}

@Test func unknownDTypeIsRejected() {
    #expect(decodeError(handMadeFile(header: #"{"w":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)))?
        .hasPrefix("bad.safetensors: tensor \"w\": unknown dtype \"F31\" (expected one of BOOL, U8,") == true)
}

@Test func offsetsOutsideTheDataSectionAreRejected() {
    #expect(decodeError(handMadeFile(header: validHeader, data: Array(repeating: 0, count: 4)))
        == "bad.safetensors: tensor \"w\": data_offsets [0, 8] lie outside the 4-byte data section")
}

@Test func offsetsThatDoNotMatchShapeTimesDTypeAreRejected() {
    #expect(decodeError(handMadeFile(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)))
        == "bad.safetensors: tensor \"w\": data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12")
    #expect(decodeError(handMadeFile(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, data: Array(repeating: 0, count: 8)))
        == "bad.safetensors: tensor \"w\": data_offsets [8, 0] end before they begin")
    #expect(decodeError(handMadeFile(header: #"{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)))
        == "bad.safetensors: tensor \"w\": shape [4294967296, 4294967296] is too large")
}

@Test func overlappingTensorsAreRejected() {
    let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
    #expect(decodeError(handMadeFile(header: header, data: Array(repeating: 0, count: 12)))
        == "bad.safetensors: tensors \"a\" and \"b\" overlap in the data section")
}

@Test func gapsAndTrailingBytesAreRejected() {
    let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
    #expect(decodeError(handMadeFile(header: gap, data: Array(repeating: 0, count: 12)))
        == "bad.safetensors: 4 unused bytes before tensor \"b\" at offset 4")
    #expect(decodeError(handMadeFile(header: validHeader, data: Array(repeating: 0, count: 9)))
        == "bad.safetensors: 1 bytes after the last tensor are not described by the header")
}

@Test func randomCorruptionNeverCrashesTheReader() throws {
    let valid = try SafetensorsWriter.encode(
        [StoredTensor(name: "layers.0.weight", shape: [4, 3], values: (0..<12).map(Float.init)),
         StoredTensor(name: "step", shape: [], values: [Int64(9)])],
        metadata: ["k": "v"])
    var generator = SystemRandomNumberGenerator()
    for trial in 0..<2000 {
        var bytes = valid
        switch trial % 3 {
        case 0: bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &generator)))
        case 1:
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
        default:
            bytes[Int.random(in: 8..<min(bytes.count, 100), using: &generator)] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
        }
        // Either a clean error or a file whose tensors are consistent with their shapes.
        if let file = try? SafetensorsReader.decode(bytes) {
            for tensor in file.tensors { #expect(tensor.bytes.count == tensor.elementCount * tensor.dtype.byteSize) }
        }
    }
}
