import Config
import NeuralNet
import Testing

/// Layer shapes and parameter counts are checked as the model is built, before anything is
/// allocated: release builds do not check the products that size the buffers.
@Suite struct ModelSizeTests {
    @Test func tooManyParametersAreRefusedBeforeAllocation() {
        // 784 × 2^31 − 1 weights: a 12 TB allocation if it got that far.
        #expect(throws: ModelError.self) { try Model(config: model([784], dense(Model.maximumSize)), seed: 1) }
    }

    @Test func aConvKernelBeyondTheLimitIsRefusedNamingTheLayer() {
        let huge = LayerConfig.conv2d(Conv2DConfig(filters: 1 << 20, kernel: 1 << 16, padding: .same))
        #expect {
            try Model(config: model([1, 4, 4], huge), seed: 1)
        } throws: { error in
            "\(error)".contains("layers.0") && "\(error)".contains("more than \(Model.maximumSize) parameters")
        }
    }

    @Test func anInputWhoseProductWrapsIsRefused() {
        #expect(throws: ModelError.self) { try Model(config: model([16, 1_152_921_504_606_847_025, 1], .flatten, dense(2)), seed: 1) }
    }

    @Test func ordinarySizesStillBuild() throws {
        #expect(try Model(config: model([1, 28, 28], LayerConfig.conv2d(Conv2DConfig(filters: 8, kernel: 3)), .flatten, dense(10)), seed: 1)
            .parameters.count == 8 * 9 + 8 + 8 * 26 * 26 * 10 + 10)
    }
}
