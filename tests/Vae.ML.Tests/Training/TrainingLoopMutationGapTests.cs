using Microsoft.ML;
using TorchSharp;
using Vae.ML.Data;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Expectations;
using Vae.ML.Tests.Likelihood;
using Vae.ML.Tests.Reliability;
using Vae.ML.Torch;

namespace Vae.ML.Tests.Training;

/// <summary>
/// What the mutation run of the training loop (docs/testing.md, "Torch/: the CPU training step") found untested in
/// <c>VaeTrainingLoop</c>: the behaviour at exact ties and boundaries that the other training tests never reach.
/// </summary>
public class TrainingLoopMutationGapTests
{
    [Fact]
    public void An_equal_validation_loss_is_not_an_improvement()
    {
        // With a learning rate of 1e-30 the weights stay as initialised (EpochAndBatchTests relies on the same), so the
        // validation loss at z = μ is the same number every epoch: the first epoch stays the best, and patience 2 stops
        // the run after the third.
        var ml = new MLContext(seed: 0);
        var options = TrainingTestSupport.Options(epochs: 10);
        options.LearningRate = 1e-30;
        options.ValidationData = SyntheticData.Load(ml, 40, seed: 2);
        options.EarlyStoppingPatience = 2;

        using var vae = ml.Transforms.Vae(options).Fit(TrainingTestSupport.TrainingRows(ml, rows: 64));

        vae.History.Select(m => m.ValidationLossAtMean).Distinct().Should().ContainSingle("the premise: a tie in every epoch");
        vae.History.Select(m => m.EpochsWithoutImprovement).Should().Equal(0, 1, 2);
        vae.History.Select(m => m.IsBestEpoch).Should().Equal(true, false, false);
        vae.History[^1].StopReason.Should().Be(VaeStopReason.EarlyStopping);
    }

    [Fact]
    public void A_network_off_the_CPU_step_trains_on_the_autograd_path_as_torch_optim_Adam_does()
    {
        // A convolutional network takes the autograd path on the CPU. The reference: the same initialisation and random
        // stream (one randperm, then one randn per batch), PyTorch's own Adam, zero_grad before each batch.
        var spec = new VaeNetworkSpec(VaeArchitecture.Convolutional, 2 * 4 * 12, [5, 4], 3, [2, 4, 12]);
        const int rows = 10, batchSize = 4;
        const long seed = 6;
        const double learningRate = 1e-2, beta = 1.5;
        var values = Enumerable.Range(0, rows * spec.InputSize).Select(i => (i * 37 % 101) / 100f).ToArray();
        using var matrix = FeatureMatrix.Allocate(rows, spec.InputSize);
        values.CopyTo(matrix.AllValues);
        using var model = VaeModel.Create(spec, seed, "cpu");
        var history = VaeTrainingLoop.Run(model, matrix, null, new VaeTrainingSettings(1, batchSize, learningRate, beta, seed), _ => { }, () => { });

        using var reference = VaeModel.Create(spec, seed, "cpu");
        using var generator = reference.CreateGeneratorAfterInit(seed);
        using var adam = torch.optim.Adam(reference.Network.parameters(), learningRate);
        using var data = torch.tensor(values, [rows, spec.InputSize]);
        using var permutation = torch.randperm(rows, generator: generator);
        reference.Network.train();
        double total = 0, reconstruction = 0, kl = 0;
        for (var start = 0; start < rows; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            var x = data.index_select(0, permutation.narrow(0, start, Math.Min(batchSize, rows - start)));
            adam.zero_grad();
            var (decoded, mu, logVar) = reference.Network.forward(x, generator);
            var (loss, bce, kld) = VaeLoss.Batch(decoded, x, mu, logVar, beta);
            loss.backward();
            adam.step();
            (total, reconstruction, kl) = (total + loss.item<float>(), reconstruction + bce.item<float>(), kl + kld.item<float>());
        }

        var epoch = history.Should().ContainSingle().Subject;
        epoch.TrainLoss.Should().BeApproximately(total / rows, 1e-5 * total / rows);
        epoch.TrainReconstructionLoss.Should().BeApproximately(reconstruction / rows, 1e-5 * reconstruction / rows);
        epoch.TrainKlDivergence.Should().BeApproximately(kl / rows, 1e-4 * kl / rows);
        var expected = reference.GetParameters().ToDictionary(p => p.Name, p => p.Values);
        foreach (var (name, _, trained) in model.GetParameters())
        {
            for (var i = 0; i < trained.Length; i++)
            {
                trained[i].Should().BeApproximately(expected[name][i], 1e-5f, $"{name}[{i}]");
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Gaussian_training_sees_the_standardized_rows_in_memory_and_streamed(bool streamed)
    {
        // As EpochAndBatchTests.Each_row_counts_exactly_once_per_epoch, for the Gaussian: with lr 1e-30 the weights stay
        // as initialised, so each epoch's KL is the mean over the rows of KL(encoder(standardized row)); raw rows (values
        // up to 1000) give another KL altogether.
        var ml = new MLContext(seed: 0);
        var rows = ManifoldData.Rows(60, seed: 1);
        var options = ManifoldData.Options(epochs: 2);
        options.LearningRate = 1e-30;
        options.BatchSize = 16;
        options.MaxInMemoryBytes = streamed ? 0 : 1L << 30;

        using var vae = ml.Transforms.Vae(options).Fit(ManifoldData.Load(ml, rows));

        var (mean, std) = vae.Standardization!.Value;
        var reference = new ReferenceVae(vae.Model.GetParameters());
        var expected = rows.Average(row =>
        {
            var standardized = row.Features.Select((v, i) => (v - mean[i]) / std[i]).ToArray();
            var (mu, logVar) = reference.Encode(standardized);
            return ReferenceVae.Kl(mu, logVar);
        });
        vae.History.Should().HaveCount(2);
        vae.History.Should().OnlyContain(m => Math.Abs(m.TrainKlDivergence - expected) <= 1e-4 * expected);
    }
}
