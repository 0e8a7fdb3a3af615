import Testing
@testable import Checkpoint

// Reference digests computed independently with Python:
//   hashlib.sha256(struct.pack('<2f', 1.0, 2.0)).hexdigest()
//   hashlib.sha256(struct.pack('<5f', 1.0, 2.0, -0.5, 3.25, 1e-3)).hexdigest()
//   hashlib.sha256(b'').hexdigest()

@Test func digestOfOneAndTwoMatchesPythonHashlib() {
    #expect(parametersSHA256([[1.0, 2.0]]) == "b9c80b5adeca450753a16950c3cc655d271f7bef7a485bc83f112b72fef21d37")
}

@Test func digestCoversTensorsConcatenatedInOrder() {
    let expected = "e340c023c02386e53fe80374284319264a3acb0447d355a6f56abba0aa5fffd7"
    #expect(parametersSHA256([[1.0, 2.0], [-0.5], [3.25, 1e-3]]) == expected)
    #expect(parametersSHA256([[1.0, 2.0, -0.5, 3.25, 1e-3]]) == expected)
    #expect(parametersSHA256([[2.0, 1.0, -0.5, 3.25, 1e-3]]) != expected)
}

@Test func digestOfNothingIsTheEmptyStringDigest() {
    #expect(parametersSHA256([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
}

@Test func streamingInChunksGivesTheSameDigest() {
    let values: [Float] = [1.0, 2.0, -0.5, 3.25, 1e-3]
    var hasher = ParameterHasher()
    values.withUnsafeBufferPointer { buffer in
        hasher.update(UnsafeBufferPointer(rebasing: buffer[0..<2]))
        hasher.update(UnsafeBufferPointer(rebasing: buffer[2..<2]))
        hasher.update(UnsafeBufferPointer(rebasing: buffer[2..<5]))
    }
    #expect(hasher.finalize() == "e340c023c02386e53fe80374284319264a3acb0447d355a6f56abba0aa5fffd7")
}
