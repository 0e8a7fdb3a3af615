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
                requestedWorkerID: try reader.read(Int32.self, "join.requestedWorkerID"),
                peerEndpoint: try reader.readString("join.peerEndpoint", limit: Limits.stringBytes)))
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
        case .chunk:
            return .chunk(ChunkData(
                role: try reader.readEnum(ChunkRole.self, "chunk.role"),
                step: try reader.read(UInt64.self, "chunk.step"),
                chunk: try reader.read(UInt32.self, "chunk.chunk"),
                shard: try reader.read(UInt32.self, "chunk.shard"),
                span: try reader.read(UInt32.self, "chunk.span"),
                payload: PayloadBuffer(byteCount: 0)))
        case .chunkControl:
            let role = try reader.readEnum(ChunkControlRole.self, "chunkControl.role")
            let step = try reader.read(UInt64.self, "chunkControl.step")
            let chunks = try reader.readArray("chunkControl.chunks", limit: Limits.shards)
            let count = Int(try reader.read(UInt32.self, "chunkControl.values"))
            guard count <= Limits.shards else { throw .lengthTooLarge(field: "chunkControl.values", length: count, limit: Limits.shards) }
            var values: [Double] = []
            values.reserveCapacity(min(count, reader.remaining / 8))
            for _ in 0..<count { values.append(try reader.readDouble("chunkControl.values")) }
            let learningRate = Float(bitPattern: try reader.read(UInt32.self, "chunkControl.learningRate"))
            let optimizerStep = try reader.read(UInt64.self, "chunkControl.optimizerStep")
            let peers = try reader.readArray("chunkControl.peers", limit: Limits.shards)
            let endpointCount = Int(try reader.read(UInt32.self, "chunkControl.endpoints"))
            guard endpointCount <= peers.count else {
                throw .invalidValue(field: "chunkControl.endpoints", value: "\(endpointCount) for \(peers.count) peers")
            }
            var endpoints: [String] = []
            for _ in 0..<endpointCount { endpoints.append(try reader.readString("chunkControl.endpoints", limit: Limits.stringBytes)) }
            let control = ChunkControl(role: role, step: step, chunks: chunks, values: values, learningRate: learningRate,
                                       optimizerStep: optimizerStep, peers: peers, endpoints: endpoints)
            switch role {
            case .report where control.chunks.count != control.values.count:
                throw .invalidValue(field: "chunkControl.values", value: "\(control.values.count) for \(control.chunks.count) chunks")
            case .apply where control.values.count != 1 || !control.chunks.isEmpty:
                throw .invalidValue(field: "chunkControl.values", value: "\(control.values.count) values and \(control.chunks.count) chunks in an apply")
            case .table where control.peers.count != control.endpoints.count || control.peers.isEmpty
                || !control.chunks.allSatisfy({ control.peers.contains($0) }):
                throw .invalidValue(field: "chunkControl.peers", value: "a table of \(control.peers.count) peers, \(control.endpoints.count) endpoints and owners \(Set(control.chunks).sorted())")
            case .traffic where control.values.count != 2:
                throw .invalidValue(field: "chunkControl.values", value: "\(control.values.count) values in a traffic report")
            default: break
            }
            return .chunkControl(control)
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
        case .chunk(var chunk):
            guard payloads.count == 1 else {
                throw .invalidValue(field: "chunk.payloadCount", value: String(payloads.count))
            }
            guard payloads[0].byteCount % 4 == 0 else {
                throw .payloadSizeMismatch(kind: .chunk, payload: 0, declared: payloads[0].byteCount / 4 * 4, actual: payloads[0].byteCount)
            }
            switch chunk.role {
            case .piece where chunk.span == 0: throw .invalidValue(field: "chunk.span", value: "0 in a piece")
            case .update where chunk.span != 0 || chunk.shard != 0:
                throw .invalidValue(field: "chunk.span", value: "shards \(chunk.shard)+\(chunk.span) in an update")
            default: break
            }
            chunk.payload = payloads[0]
            message = .chunk(chunk)
        default:
            guard payloads.isEmpty else {
                throw .invalidValue(field: "\(message.kind).payloadCount", value: String(payloads.count))
            }
        }
    }
}
