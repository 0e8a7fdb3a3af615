/// Compact little-endian binary form of `ShardSignals`, versioned so that a coordinator can
/// reject payloads from an incompatible worker.
///
/// Layout (version 3; 3 added the output's permuted-label loss gap, NaN when not measured): magic `0x43 0x53` ("CS"), version byte, then the fields in declaration
/// order (the optional probe as a flag byte then its fields) (counts as UInt32/UInt16, statistics as Float64 or Float32), then each layer with its
/// name as a UInt16-length UTF-8 string. A 3-layer MLP's signals take about 230 bytes.
extension Double {
    /// nil for NaN (the wire's "not measured").
    fileprivate var nonNaN: Double? { isNaN ? nil : self }
}

extension ShardSignals {
    /// The current format version.
    public static let codecVersion: UInt8 = 3

    /// Encodes the signals (see the type's layout comment).
    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(96 + layers.count * 40)
        w.u8(0x43); w.u8(0x53); w.u8(Self.codecVersion)
        w.u32(examples); w.f64(lossSum); w.u32(lossCount)
        w.f64(input.min); w.f64(input.max); w.f64(input.meanAbs); w.u32(input.constantFeatures); w.u32(input.nonFiniteCount)
        w.f64(labels.min); w.f64(labels.max); w.u16(labels.distinct); w.u32(labels.nonFiniteCount)
        w.u32(output.units); w.f64(output.maxVariance); w.f64(output.meanVariance)
        w.u16(output.distinctPredictions); w.u16(output.distinctLabels)
        w.f32(output.predictionEntropy); w.f32(output.labelEntropy); w.u32(output.nonFiniteCount); w.f64(output.permutedLossGap ?? .nan)
        w.f64(gradientNorm); w.u64(parameterChecksum)
        if let probe {
            w.u8(1); w.u32(probe.examples); w.f64(probe.meanVariance); w.u16(probe.distinctPredictions); w.u64(probe.outputChecksum)
        } else {
            w.u8(0)
        }
        w.u16(layers.count)
        for layer in layers {
            w.u16(layer.depth); w.string(layer.name); w.string(layer.activation); w.u32(layer.units)
            w.f32(layer.deadFraction); w.f32(layer.saturationFraction); w.f32(layer.outputStd)
            w.u32(layer.effectiveWidth); w.u32(layer.nonFiniteCount)
        }
        return w.bytes
    }

    /// Decodes `encode()`'s output; throws `MonitorError.malformedSignals` on anything else
    /// (never traps, whatever the bytes).
    public static func decode(_ bytes: [UInt8]) throws -> ShardSignals {
        var r = ByteReader(bytes: bytes)
        guard try r.u8() == 0x43, try r.u8() == 0x53 else { throw MonitorError.malformedSignals(reason: "bad magic") }
        let version = try r.u8()
        guard version == codecVersion else {
            throw MonitorError.malformedSignals(reason: "version \(version), expected \(codecVersion)")
        }
        var s = ShardSignals()
        s.examples = try r.u32(); s.lossSum = try r.f64(); s.lossCount = try r.u32()
        s.input = InputSignals(min: try r.f64(), max: try r.f64(), meanAbs: try r.f64(), constantFeatures: try r.u32(), nonFiniteCount: try r.u32())
        s.labels = LabelSignals(min: try r.f64(), max: try r.f64(), distinct: try r.u16(), nonFiniteCount: try r.u32())
        s.output = OutputSignals(units: try r.u32(), maxVariance: try r.f64(), meanVariance: try r.f64(),
                                 distinctPredictions: try r.u16(), distinctLabels: try r.u16(),
                                 predictionEntropy: try r.f32(), labelEntropy: try r.f32(), nonFiniteCount: try r.u32(),
                                 permutedLossGap: try r.f64().nonNaN)
        s.gradientNorm = try r.f64(); s.parameterChecksum = try r.u64()
        switch try r.u8() {
        case 0: break
        case 1: s.probe = ProbeSignals(examples: try r.u32(), meanVariance: try r.f64(), distinctPredictions: try r.u16(), outputChecksum: try r.u64())
        case let flag: throw MonitorError.malformedSignals(reason: "probe flag \(flag)")
        }
        let layerCount = try r.u16()
        s.layers.reserveCapacity(min(layerCount, 1024))
        for _ in 0..<layerCount {
            let depth = try r.u16(), name = try r.string(), activation = try r.string(), units = try r.u32()
            s.layers.append(LayerSignals(depth: depth, name: name, activation: activation, units: units,
                                         deadFraction: try r.f32(), saturationFraction: try r.f32(), outputStd: try r.f32(),
                                         effectiveWidth: try r.u32(), nonFiniteCount: try r.u32()))
        }
        guard r.offset == bytes.count else {
            throw MonitorError.malformedSignals(reason: "\(bytes.count - r.offset) trailing bytes")
        }
        return s
    }
}

private struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: Int) { let x = UInt16(clamping: Swift.max(0, v)); bytes.append(UInt8(x & 0xFF)); bytes.append(UInt8(x >> 8)) }
    mutating func u32(_ v: Int) { append(UInt64(UInt32(clamping: Swift.max(0, v))), 4) }
    mutating func u64(_ v: UInt64) { append(v, 8) }
    mutating func f64(_ v: Double) { append(v.bitPattern, 8) }
    mutating func f32(_ v: Double) { append(UInt64(Float(v).bitPattern), 4) }
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8.prefix(65535))
        u16(utf8.count)
        bytes += utf8
    }
    private mutating func append(_ v: UInt64, _ width: Int) {
        for i in 0..<width { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}

private struct ByteReader {
    let bytes: [UInt8]
    var offset = 0
    mutating func take(_ width: Int) throws -> UInt64 {
        guard width <= bytes.count - offset else {
            throw MonitorError.malformedSignals(reason: "truncated at byte \(offset) of \(bytes.count)")
        }
        var v: UInt64 = 0
        for i in 0..<width { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        offset += width
        return v
    }
    mutating func u8() throws -> UInt8 { UInt8(try take(1)) }
    mutating func u16() throws -> Int { Int(try take(2)) }
    mutating func u32() throws -> Int { Int(try take(4)) }
    mutating func u64() throws -> UInt64 { try take(8) }
    mutating func f64() throws -> Double { Double(bitPattern: try take(8)) }
    mutating func f32() throws -> Double { Double(Float(bitPattern: UInt32(try take(4)))) }
    mutating func string() throws -> String {
        let length = try u16()
        guard length <= bytes.count - offset else { throw MonitorError.malformedSignals(reason: "string runs past the end") }
        let slice = bytes[offset..<(offset + length)]
        offset += length
        guard let text = String(validating: slice, as: UTF8.self) else { throw MonitorError.malformedSignals(reason: "invalid UTF-8 in a layer name") }
        return text
    }
}
