using Microsoft.ML;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Reliability;

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
}
