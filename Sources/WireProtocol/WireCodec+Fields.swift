/// Decoding of the kind-specific header fields.
extension WireCodec {
    /// Reads the kind's fields; payloads are attached afterwards by `attach`.
    static func readFields(kind: MessageKind, from reader: inout ByteReader) throws(WireError) -> Message {
        switch kind {
        case .join:
            return .join(Join(
                workerName: try reader.readString("join.workerName", limit: Limits.stringBytes),
                buildVersion: try reader.readString("join.buildVersion", limit: Limits.stringBytes),
                protocolVersion: try reader.read(UInt16.self, "join.protocolVersion"),
                dataFingerprint: try reader.read(UInt64.self, "join.dataFingerprint"),
                pid: try reader.read(Int32.self, "join.pid"),
                requestedWorkerID: try reader.read(Int32.self, "join.requestedWorkerID")))
        case .welcome:
            return .welcome(Welcome(
                workerID: try reader.read(UInt32.self, "welcome.workerID"),
                configJSON: try reader.readBytes("welcome.configJSON", limit: Limits.blobBytes),
                configHash: try reader.read(UInt64.self, "welcome.configHash"),
                heartbeatIntervalMs: try reader.read(UInt32.self, "welcome.heartbeatIntervalMs"),
                timeoutMs: try reader.read(UInt32.self, "welcome.timeoutMs"),
                parameterVersion: try reader.read(UInt64.self, "welcome.parameterVersion"),
                kernel: try reader.readString("welcome.kernel", limit: Limits.stringBytes)))
        case .reject:
            return .reject(Reject(
                code: try reader.readEnum(RejectCode.self, "reject.code"),
                message: try reader.readString("reject.message", limit: Limits.stringBytes)))
        case .work:
            return .work(Work(
                step: try reader.read(UInt64.self, "work.step"),
                epoch: try reader.read(UInt32.self, "work.epoch"),
                stepInEpoch: try reader.read(UInt32.self, "work.stepInEpoch"),
                parameterVersion: try reader.read(UInt64.self, "work.parameterVersion"),
                shards: try reader.readArray("work.shards", limit: Limits.shards),
                shardCount: try reader.read(UInt32.self, "work.shardCount"),
                flags: WorkFlags(rawValue: try reader.read(UInt8.self, "work.flags")),
                gradientDType: try reader.readEnum(WireDType.self, "work.gradientDType")))
        case .gradient:
            return .gradient(Gradient(
                step: try reader.read(UInt64.self, "gradient.step"),
                shard: try reader.read(UInt32.self, "gradient.shard"),
                exampleCount: try reader.read(UInt32.self, "gradient.exampleCount"),
                parameterVersion: try reader.read(UInt64.self, "gradient.parameterVersion"),
                lossSum: try reader.readDouble("gradient.lossSum"),
                correct: try reader.read(UInt32.self, "gradient.correct"),
                dtype: try reader.readEnum(WireDType.self, "gradient.dtype"),
                computeNanos: try reader.read(UInt64.self, "gradient.computeNanos"),
                statistics: try reader.readBytes("gradient.statistics", limit: Limits.blobBytes),
                payload: PayloadBuffer(byteCount: 0),
                sharedSlot: try reader.read(UInt32.self, "gradient.sharedSlot"),
                sharedCRC: try reader.read(UInt32.self, "gradient.sharedCRC"),
                span: try reader.read(UInt32.self, "gradient.span")))
        case .heartbeat:
            return .heartbeat(Heartbeat(
                sequence: try reader.read(UInt64.self, "heartbeat.sequence"),
                sentAtNanos: try reader.read(UInt64.self, "heartbeat.sentAtNanos")))
        case .leave:
            return .leave(Leave(reason: try reader.readString("leave.reason", limit: Limits.stringBytes)))
        }
    }

    /// Puts decoded payloads into the message, checking their number and element size.
    static func attach(_ payloads: [PayloadBuffer], to message: inout Message) throws(WireError) {
        switch message {
        case .work(var work):
            guard payloads.count <= 1 else {
                throw .invalidValue(field: "work.payloadCount", value: String(payloads.count))
            }
            if let parameters = payloads.first {
                guard parameters.byteCount % 4 == 0 else {
                    throw .payloadSizeMismatch(kind: .work, payload: 0,
                                               declared: parameters.byteCount / 4 * 4, actual: parameters.byteCount)
                }
                work.parameters = parameters
            }
            message = .work(work)
        case .gradient(var gradient):
            guard gradient.span >= 1 else { throw .invalidValue(field: "gradient.span", value: "0") }
            guard payloads.count == 1 else {
                throw .invalidValue(field: "gradient.payloadCount", value: String(payloads.count))
            }
            let width = gradient.dtype.byteWidth
            guard payloads[0].byteCount % width == 0 else {
                throw .payloadSizeMismatch(kind: .gradient, payload: 0,
                                           declared: payloads[0].byteCount / width * width,
                                           actual: payloads[0].byteCount)
            }
            if gradient.sharedSlot != Gradient.inline && payloads[0].byteCount != 0 {
                throw .invalidValue(field: "gradient.sharedSlot", value: "\(gradient.sharedSlot) with a \(payloads[0].byteCount)-byte payload")
            }
            gradient.payload = payloads[0]
            message = .gradient(gradient)
        default:
            guard payloads.isEmpty else {
                throw .invalidValue(field: "\(message.kind).payloadCount", value: String(payloads.count))
            }
        }
    }
}
