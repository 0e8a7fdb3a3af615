#if canImport(Glibc)
import Glibc
#endif
import CChecksum
import Cluster
import Foundation

/// Writes TensorBoard event files (`OUT/tensorboard/events.out.tfevents.TIME.HOST`), what
/// PyTorch's `SummaryWriter` writes, so `tensorboard --logdir OUT/tensorboard` shows a run.
///
/// A small encoder instead of swift-protobuf: the four messages needed (Event, Summary,
/// Summary.Value, and for text a TensorProto with its SummaryMetadata) are a few fields each,
/// and the generated code plus the protobuf runtime would double the project's build. The
/// field numbers are tensorflow/core/util/event.proto and framework/summary.proto:
///
///     Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
///               SessionLog session_log = 7 { SessionStatus status = 1 (START = 1); } }
///     Summary { repeated Value value = 1; }
///     Value   { string tag = 1; float simple_value = 2; SummaryMetadata metadata = 9; TensorProto tensor = 8; }
///     SummaryMetadata { PluginData plugin_data = 1 { string plugin_name = 1; } }
///     TensorProto { DataType dtype = 1 (DT_STRING = 7); TensorShapeProto tensor_shape = 2; repeated bytes string_val = 8; }
///
/// Each event is a TFRecord: little-endian u64 length, masked CRC32C of those 8 bytes, the
/// bytes, masked CRC32C of the bytes (mask: rotate right 15, add 0xa282ead8).
///
/// A rewind or a resume writes steps again: a SessionLog START at the first step computed again
/// makes TensorBoard's reader drop the earlier events from that step on (its purge of orphaned
/// data, for file version 2), as metrics.jsonl is cut back.
public final class TensorBoardWriter {
    public let path: String
    private let file: AppendingFile

    /// Creates `directory` and a new event file in it, starting with the file-version event.
    public init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError.io("\(directory): cannot create directory (\(error.localizedDescription))")
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let now = Date().timeIntervalSince1970
        // Two writers in one second (a resume right after a run) get distinct names.
        path = "\(directory)/events.out.tfevents.\(Int(now)).\(String(cString: host)).\(getpid())"
        file = try AppendingFile(path: path, truncate: false)
        var event = ProtoWriter()
        event.double(1, now)
        event.string(3, "brain.Event:2")
        try write(event.bytes)
    }

    /// One scalar per tag at `step`.
    public func scalars(_ values: [(tag: String, value: Double)], step: Int) throws {
        guard !values.isEmpty else { return }
        var summary = ProtoWriter()
        var entry = ProtoWriter()
        for (tag, value) in values {
            entry.reset()
            entry.string(1, tag)
            entry.float(2, Float(value))
            summary.message(1, entry)
        }
        try write(event(step: step, summary: summary))
    }

    /// The run starts (again) at `step`: a SessionLog START event, on which TensorBoard's
    /// reader drops every event at that step or later (a rewind or a resume computes them again).
    public func restart(at step: Int) throws {
        var log = ProtoWriter()
        log.varint(1, 1)  // SessionLog.START
        var event = ProtoWriter()
        event.double(1, Date().timeIntervalSince1970)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.message(7, log)
        try write(event.bytes)
    }

    /// A text summary (TensorBoard's Text tab; markdown) under `tag` at `step`.
    public func text(_ tag: String, _ text: String, step: Int) throws {
        var plugin = ProtoWriter()
        plugin.string(1, "text")
        var metadata = ProtoWriter()
        metadata.message(1, plugin)
        var tensor = ProtoWriter()
        tensor.varint(1, 7)  // DT_STRING
        tensor.message(2, ProtoWriter())  // a scalar: no dimensions
        tensor.bytes(8, Array(text.utf8))
        var entry = ProtoWriter()
        entry.string(1, tag)
        entry.message(8, tensor)
        entry.message(9, metadata)
        var summary = ProtoWriter()
        summary.message(1, entry)
        try write(event(step: step, summary: summary))
    }

    private func event(step: Int, summary: ProtoWriter) -> [UInt8] {
        var event = ProtoWriter()
        event.double(1, Date().timeIntervalSince1970)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.message(5, summary)
        return event.bytes
    }

    private func write(_ data: [UInt8]) throws {
        var record: [UInt8] = []
        record.reserveCapacity(data.count + 16)
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        record += length
        record += withUnsafeBytes(of: Self.maskedCRC(length).littleEndian) { Array($0) }
        record += data
        record += withUnsafeBytes(of: Self.maskedCRC(data).littleEndian) { Array($0) }
        try file.append(bytes: record)
    }

    /// TFRecord's masked CRC32C.
    static func maskedCRC(_ bytes: [UInt8]) -> UInt32 {
        let crc = bytes.withUnsafeBytes { chorus_crc32c(0, $0.baseAddress, $0.count) }
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// Protocol-buffer wire format, the few field types TensorBoardWriter needs.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func raw(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { raw(UInt64(field) << 3 | wireType) }

    mutating func varint(_ field: Int, _ value: UInt64) { key(field, 0); raw(value) }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, 2)
        raw(UInt64(value.count))
        bytes += value
    }

    mutating func string(_ field: Int, _ value: String) {
        key(field, 2)
        raw(UInt64(value.utf8.count))
        bytes.append(contentsOf: value.utf8)
    }

    /// Empties the buffer, keeping its capacity (one writer reused for many small messages).
    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    mutating func message(_ field: Int, _ value: ProtoWriter) { bytes(field, value.bytes) }
}
