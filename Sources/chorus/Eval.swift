import ArgumentParser
import Checkpoint
import Cluster
import Config
import Foundation
import NeuralNet
import Stress
import Training

/// `chorus eval`: test loss and accuracy of a checkpoint.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a checkpoint on a data set's test split.")
    @Argument(help: "A checkpoint (.safetensors written by chorus train).") var checkpoint: String
    @Option(help: "Config (default: the one stored in the checkpoint).") var config: String?
    @Option(help: "Data: fashion-mnist, a directory of IDX files or of x_train.npy/y_train.npy/x_test.npy/y_test.npy, or an .npz archive with those arrays.") var data: String?

    func run() throws {
        _ = BLASEnvironment.verifyOrFallBack()
        do {
            let file: SafetensorsFile
            do { file = try SafetensorsReader.read(path: checkpoint) } catch { throw RuntimeError.checkpoint("\(error)") }
            var runConfig: RunConfig
            if let config { runConfig = try RunConfig.load(path: config) } else {
                guard let json = file.metadata["config"] else { throw RuntimeError.checkpoint("\(checkpoint): no config in the metadata; pass --config") }
                runConfig = try RunConfig.parse(jsonData: Data(json.utf8), source: checkpoint)
            }
            if let data { runConfig.data.source = try DataArgument.source(data) }
            let (split, _) = try loadData(runConfig.data)
            let model = try Model(config: runConfig.model, seed: runConfig.training.seed)
            try CheckpointIO.loadWeights(into: model, from: file)
            try Training.validate(model: model, loss: runConfig.loss, data: split.test, split: "test")
            let result = split.test.features.withUnsafeBufferPointer { f in
                split.test.labels.withUnsafeBufferPointer { l in
                    model.evaluate(features: f.baseAddress!, labels: l.baseAddress!, count: split.test.count, loss: runConfig.loss)
                }
            }
            print(JSONValue.members(["test_loss": .real(result.loss), "test_accuracy": .real(result.accuracy), "examples": .integer(split.test.count)]).serialized(pretty: true))
        } catch let error as ValidationError { throw error } catch { Launch.fail(error) }
    }
}
