using FluentAssertions;
using TorchSharp;
using Vae.ML.Torch;
using Xunit;
using static TorchSharp.torch;

namespace Vae.ML.Tests.Training;

/// <summary>
/// Contracts of the training step's small parts that the mutation run of Torch/ (docs/testing.md, "Torch/: the CPU
/// training step") found untested: the epoch tally fed by the CPU step's host values, the step partition's arguments
/// and shapes, the scoring cursor's input batch, and the Gaussian loss against its formula in double precision.
/// </summary>
public class TrainingStepMutationGapTests
{
    [Fact]
    public void The_tally_sums_host_and_device_steps_in_the_order_they_were_recorded()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        using var tally = new EpochTally(epoch: 2, learningRate: 1e-3);
        tally.Check();
        (tally.Total, tally.Pending).Should().Be((0.0, 0));

        RecordOnDevice(tally, 1f, 2f, 4f, rows: 3);
        tally.Record(10, 20, 40, 0.5f, rows: 5);
        RecordOnDevice(tally, 100f, 200f, 400f, rows: 7);
        tally.Pending.Should().Be(3);
        tally.Check();

        tally.Pending.Should().Be(0);
        tally.Total.Should().Be(111);
        tally.Reconstruction.Should().Be(222);
        tally.Kl.Should().Be(444);
        tally.Rows.Should().Be(15);
    }

    [Theory]
    [InlineData(double.PositiveInfinity, 1f, null)]
    [InlineData(2.5, float.NaN, "a gradient is NaN or infinite (the loss is 2.5)")]
    [InlineData(2.5, float.NegativeInfinity, "a gradient is NaN or infinite (the loss is 2.5)")]
    public void A_bad_host_step_after_device_steps_is_named_by_its_batch(double loss, float gradient, string? why)
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        using var tally = new EpochTally(epoch: 3, learningRate: 0.25);
        RecordOnDevice(tally, 1f, 1f, 1f, rows: 2);
        tally.Record(1, 1, 1, 1f, rows: 2);
        tally.Record(loss, 1, 1, gradient, rows: 2);

        var error = tally.Invoking(t => t.Check()).Should().Throw<VaeTrainingDivergedException>().Which;
        (error.Epoch, error.Batch, error.LearningRate).Should().Be((3, 3, 0.25));
        error.Message.Should().Contain(why ?? $"the loss is {float.PositiveInfinity}");
    }

    private static void RecordOnDevice(EpochTally tally, float loss, float reconstruction, float kl, long rows)
    {
        using var scope = torch.NewDisposeScope();
        tally.Record(torch.tensor(loss), torch.tensor(reconstruction), torch.tensor(kl), torch.tensor(1f), rows);
    }

    [Fact]
    public void A_partition_needs_a_worker_and_a_positive_minimum_work()
    {
        ((Action)(() => new StepPartition(0))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("workers");
        ((Action)(() => new StepPartition(2, minimumWork: 0))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("minimumWork");
        new StepPartition(1, minimumWork: 1).Workers.Should().Be(1);
    }

    [Fact]
    public void A_partitions_ranges_follow_its_workers_work_and_alignment()
    {
        (StepPartition.Serial.Workers, StepPartition.Serial.MaxParts).Should().Be((1, 1));
        new StepPartition(3).MaxParts.Should().Be(3 * StepPartition.RangesPerWorker);
        new StepPartition(1, minimumWork: 1).Parts(1000, 1000).Should().Be(1, "one worker never splits");

        var partition = new StepPartition(2, minimumWork: 100);
        partition.Parts(0, 1).Should().Be(1);
        partition.Parts(250, 1).Should().Be(2, "250 units of work hold two ranges of 100");
        partition.Parts(10, 30).Should().Be(3, "items weigh their cost");
        partition.Parts(1_000_000, 1_000_000).Should().Be(partition.MaxParts, "no overflow, no more ranges than MaxParts");
        partition.Parts(1000, 1, alignment: 300).Should().Be(3, "a range holds at least one aligned block");
        partition.Parts(1000, 1, alignment: 2000).Should().Be(1);
    }

    [Fact]
    public void A_pass_too_small_to_split_runs_once_on_the_calling_thread()
    {
        var partition = new StepPartition(2);
        var caller = Environment.CurrentManagedThreadId;
        var calls = new List<(int Part, int Start, int End, int Thread)>();
        partition.For(7, 1, (part, start, end) => calls.Add((part, start, end, Environment.CurrentManagedThreadId)));
        calls.Should().Equal((0, 0, 7, caller));
    }

    [Fact]
    public void Torchs_partition_has_one_worker_per_intra_op_thread_within_the_processors()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        var threads = torch.get_num_threads();
        StepPartition.ForTorchThreads().Workers.Should().Be(Math.Clamp(threads, 1, Environment.ProcessorCount));
    }

    [Fact]
    public void An_input_batch_checks_its_shape_rows_and_lifetime()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        ((Action)(() => new InputBatch(0, 3))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("capacity");
        ((Action)(() => new InputBatch(2, 0))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("width");

        var liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var batch = new InputBatch(capacity: 4, width: 3);
        (batch.Capacity, batch.Width).Should().Be((4, 3));
        for (var row = 0; row < 4; row++)
        {
            batch.Row(row).Length.Should().Be(3);
            batch.Row(row).Fill(row + 1);
        }

        ((Action)(() => batch.Row(-1))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => batch.Row(4))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => batch.Rows(5))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => batch.Tensor(5))).Should().Throw<ArgumentOutOfRangeException>();
        batch.Rows(2).ToArray().Should().Equal(1, 1, 1, 2, 2, 2);
        batch.Rows(4).Length.Should().Be(12);
        using (var tensor = batch.Tensor(3))
        {
            tensor.shape.Should().Equal(3, 3);
            tensor.data<float>().ToArray().Should().Equal(1, 1, 1, 2, 2, 2, 3, 3, 3);
        }

        batch.Dispose();
        batch.Dispose();
        ((Action)(() => batch.Row(0))).Should().Throw<ObjectDisposedException>();
        ((Action)(() => batch.Rows(1))).Should().Throw<ObjectDisposedException>();
        ((Action)(() => batch.Tensor(1))).Should().Throw<ObjectDisposedException>();
        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(liveBefore, "the batch frees its tensor");
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.4)]
    public void The_Gaussian_loss_is_its_formula_per_row_and_per_batch(double beta)
    {
        // 3 rows, 4 features; log σ² on both sides of the floor, so the floor's clamp shows.
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        const int rows = 3, width = 4, latent = 2;
        const double logStdSum = 0.75;
        float[] x = [0.5f, -1f, 2f, 0f, 1.5f, 0.25f, -0.5f, 3f, -2f, 1f, 0f, 0.5f];
        float[] mean = [0f, -0.5f, 1f, 0.5f, 1f, 1f, 0f, 2f, -1f, 0f, 0.5f, 0f];
        float[] logVariance = [-10f, 0f, 0.5f, -1f];
        float[] mu = [0.5f, -1f, 0f, 2f, 1f, 1f];
        float[] logVar = [0f, -0.5f, 1f, 0.25f, -2f, 0f];
        var floor = GaussianDecoder.MinLogVariance;

        var expectedReconstruction = new double[rows];
        var expectedKl = new double[rows];
        for (var r = 0; r < rows; r++)
        {
            for (var j = 0; j < width; j++)
            {
                var lv = Math.Max(logVariance[j], floor);
                var d = (double)x[(r * width) + j] - mean[(r * width) + j];
                expectedReconstruction[r] += 0.5 * (Math.Log(2 * Math.PI) + lv + (d * d * Math.Exp(-lv)));
            }

            expectedReconstruction[r] += logStdSum;
            for (var k = 0; k < latent; k++)
            {
                double m = mu[(r * latent) + k], lv = logVar[(r * latent) + k];
                expectedKl[r] += -0.5 * (1 + lv - (m * m) - Math.Exp(lv));
            }
        }

        using var scope = torch.NewDisposeScope();
        var gaussian = new GaussianTerms(torch.tensor(logVariance), logStdSum);
        var (xs, means) = (torch.tensor(x, [rows, width]), torch.tensor(mean, [rows, width]));
        var (mus, logVars) = (torch.tensor(mu, [rows, latent]), torch.tensor(logVar, [rows, latent]));

        var reconstruction = VaeLoss.ReconstructionPerRow(means, xs, gaussian).data<float>().ToArray();
        var perRow = VaeLoss.PerRow(means, xs, mus, logVars, beta, gaussian).data<float>().ToArray();
        var (total, batchReconstruction, kl) = VaeLoss.Batch(means, xs, mus, logVars, beta, gaussian);
        for (var r = 0; r < rows; r++)
        {
            ((double)reconstruction[r]).Should().BeApproximately(expectedReconstruction[r], 1e-5 * Math.Abs(expectedReconstruction[r]), $"row {r}");
            var expected = expectedReconstruction[r] + (beta * expectedKl[r]);
            ((double)perRow[r]).Should().BeApproximately(expected, 1e-5 * Math.Abs(expected), $"row {r}");
        }

        ((double)batchReconstruction.item<float>()).Should().BeApproximately(expectedReconstruction.Sum(), 1e-5 * Math.Abs(expectedReconstruction.Sum()));
        ((double)kl.item<float>()).Should().BeApproximately(expectedKl.Sum(), 1e-5 * Math.Abs(expectedKl.Sum()));
        var expectedTotal = expectedReconstruction.Sum() + (beta * expectedKl.Sum());
        ((double)total.item<float>()).Should().BeApproximately(expectedTotal, 1e-5 * Math.Abs(expectedTotal));
    }
}
