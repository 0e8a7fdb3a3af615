import Foundation
import Testing
@testable import Checkpoint

@Test func headerLayoutMatchesTheFormatByteForByte() throws {
    // Expected bytes written out by hand; the same bytes that Python's safetensors 0.8
    // `safetensors.numpy.save({"a": np.array([[1, 2], [3, 4]], np.float32)}, metadata={"k": "v"})` produces.
    let header = #"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#  // 82 bytes
    let expected: [UInt8] = [88, 0, 0, 0, 0, 0, 0, 0]  // 82 + 6 spaces of padding = 88, little-endian
        + Array(header.utf8) + Array(repeating: 0x20, count: 6)
        + [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x80, 0x40]  // 1, 2, 3, 4 as LE f32
    let bytes = try SafetensorsWriter.encode([StoredTensor(name: "a", shape: [2, 2], values: [1, 2, 3, 4] as [Float])], metadata: ["k": "v"])
    #expect(bytes == expected)
}

@Test func headerIsPaddedToAMultipleOfEightAndOffsetsAreContiguous() throws {
    for nameLength in 1...12 {
        let tensors = [
            StoredTensor(name: String(repeating: "x", count: nameLength), shape: [3], values: [UInt8(1), 2, 3]),
            StoredTensor(name: "y", shape: [1], values: [Int64(-1)]),
        ]
        let bytes = try SafetensorsWriter.encode(tensors)
        let headerLength = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        #expect(headerLength % 8 == 0)
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as! [String: [String: Any]]
        #expect(header["y"]?["data_offsets"] as? [Int] == [3, 11])
        #expect(bytes.count == 8 + headerLength + 11)
        #expect(Array(bytes[(8 + headerLength + 3)...]) == [UInt8](repeating: 0xFF, count: 8))
    }
}
