using FluentAssertions;
using TorchSharp;
using Vae.ML.Torch;
using Xunit;
using static TorchSharp.torch;

namespace Vae.ML.Tests.Training;

public class EpochTallyTests
{
    private static void Record(EpochTally tally, float loss, float gradient, long rows = 2)
    {
        using var scope = torch.NewDisposeScope();
        tally.Record(torch.tensor(loss), torch.tensor(loss / 2), torch.tensor(loss / 4), torch.tensor(gradient), rows);
    }

    [Fact]
    public void Sums_are_those_of_reading_every_step_in_order()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        using var tally = new EpochTally(epoch: 1, learningRate: 1e-3);
        var losses = new[] { 3.25f, 1e7f, 0.1f, 2.5f, 7f };
        double expected = 0;
        for (var i = 0; i < losses.Length; i++)
        {
            Record(tally, losses[i], 1f);
            expected += losses[i];
            if (i == 2)
            {
                tally.Check();
                tally.Pending.Should().Be(0);
            }
        }

        tally.Check();
        tally.Total.Should().Be(expected);
        tally.Rows.Should().Be(10);
        tally.Reconstruction.Should().Be(losses.Aggregate(0.0, (s, l) => s + (l / 2)));
    }

    [Theory]
    [InlineData(float.NaN, 1f, "the loss is NaN")]
    [InlineData(5f, float.PositiveInfinity, "a gradient is NaN or infinite (the loss is 5)")]
    public void The_first_bad_step_is_named_by_epoch_and_batch_across_checks(float loss, float gradient, string why)
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        var liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var tally = new EpochTally(epoch: 4, learningRate: 0.5);
        Record(tally, 1f, 1f);
        Record(tally, 1f, 1f);
        tally.Check();
        Record(tally, 1f, 1f);
        Record(tally, loss, gradient);
        Record(tally, float.NaN, float.NaN);

        var check = tally.Invoking(t => t.Check()).Should().Throw<VaeTrainingDivergedException>().Which;
        (check.Epoch, check.Batch, check.LearningRate).Should().Be((4, 4, 0.5));
        check.Message.Should().Contain(why);
        tally.Dispose();
        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(liveBefore, "pending steps are freed");
    }
}
