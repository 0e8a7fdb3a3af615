import Config
import NeuralNet
import Testing

/// Every layer kind, wired into a `Model`, against finite differences of the summed loss: the
/// check covers the layer's op and its wiring (parameter registration, flat-buffer offsets,
/// flattening, the loss encoding), so each model is small and ends in the loss under test.
@Suite struct LayersGradientTests {
    static let activations: [Activation] = [.linear, .relu, .leakyRelu(alpha: 0.1), .prelu(initial: 0.25), .tanh, .sigmoid, .gelu, .softmax]

    @Test func denseWithAndWithoutBias() throws {
        let fixture = try ShardFixture(model([4], dense(5, .tanh), dense(3, bias: false)))
        #expect(fixture.model.parameters.entries.map(\.name) == ["layers.0.weight", "layers.0.bias", "layers.1.weight"])
        #expect(checkModelGradients(fixture) == 4 * 5 + 5 + 5 * 3)
    }

    @Test(arguments: activations)
    func denseWithActivation(_ activation: Activation) throws {
        try checkModelGradients(ShardFixture(model([4], dense(6, activation), dense(3)), seed: 7))
    }

    @Test(arguments: activations)
    func standaloneActivationLayer(_ activation: Activation) throws {
        let fixture = try ShardFixture(model([4], dense(6), .activation(activation), dense(3)), seed: 3)
        // PReLU's slope is a parameter of its own, registered after the dense layer's.
        let slopes = fixture.model.parameters.entries.filter { $0.name == "layers.1.weight" }
        #expect(slopes.count == (activation == .prelu(initial: 0.25) ? 1 : 0))
        checkModelGradients(fixture)
    }

    @Test func conv2dValidThenMaxPoolThenFlatten() throws {
        let conv = Conv2DConfig(filters: 3, kernel: 3, activation: .tanh)
        let fixture = try ShardFixture(model([2, 5, 5], .conv2d(conv), .maxpool2d(size: 2, stride: 1), .flatten, dense(3)), seed: 4)
        #expect(fixture.model.parameters.entries.first?.shape == [3, 2, 3, 3])
        checkModelGradients(fixture)
    }

    @Test func conv2dSamePaddingStrideTwoWithPReLU() throws {
        let conv = Conv2DConfig(filters: 2, kernel: 3, stride: 2, padding: .same, activation: .prelu(initial: 0.25))
        let fixture = try ShardFixture(model([1, 5, 5], .conv2d(conv), dense(3)), seed: 28)
        #expect(fixture.model.outputShape == [3])
        checkModelGradients(fixture)
    }

    @Test func batchNormOverFeatures() throws {
        let fixture = try ShardFixture(model([4], dense(5), .batchnorm(momentum: 0.1, eps: 1e-5), .activation(.tanh), dense(3)),
                                       examples: 5, seed: 6)
        #expect(fixture.model.batchNormLayers.count == 1)
        checkModelGradients(fixture)
    }

    @Test func batchNormOverChannels() throws {
        let conv = Conv2DConfig(filters: 2, kernel: 2)
        let fixture = try ShardFixture(model([1, 3, 3], .conv2d(conv), .batchnorm(momentum: 0.1, eps: 1e-5), .flatten, dense(3)),
                                       examples: 3, seed: 7)
        checkModelGradients(fixture)
    }

    @Test func dropoutWithAFixedKey() throws {
        let fixture = try ShardFixture(model([4], dense(8, .tanh), .dropout(rate: 0.5), dense(3)), examples: 4, seed: 8)
        // The mask is a function of the key: the same key repeats it, another key draws another.
        #expect(fixture.compute().contribution == fixture.compute().contribution)
        #expect(fixture.compute().outcome.lossSum != fixture.compute(randomKey: [7, 2, 0]).outcome.lossSum)
        checkModelGradients(fixture)
    }

    @Test func residualBlock() throws {
        let fixture = try ShardFixture(model([4], dense(4, .tanh), .residual([dense(4, .tanh), dense(4)]), dense(3)), seed: 9)
        #expect(fixture.model.parameters.entries.map(\.name).contains("layers.1.layers.1.weight"))
        checkModelGradients(fixture)
    }

    @Test(arguments: [LossKind.mse, .bce], [1, 3])
    func regressionLosses(_ loss: LossKind, units: Int) throws {
        // One unit regresses the label itself; several regress its one-hot encoding.
        try checkModelGradients(ShardFixture(model([3], dense(4, .tanh), dense(units)), loss: loss, examples: 4, seed: 10))
    }
}
