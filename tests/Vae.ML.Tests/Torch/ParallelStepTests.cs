using FluentAssertions;
using TorchSharp;
using Vae.ML.Torch;
using Xunit;
using static TorchSharp.torch;

// Not Vae.ML.Tests.Torch: that namespace would hide Vae.ML.Torch from the other tests' "Torch.X" references.
namespace Vae.ML.Tests.CpuStep;

/// <summary>
/// The CPU step and Adam with their managed passes cut over several threads (<see cref="StepPartition"/>) against the
/// same on one thread: the same seed, batches and ε must give the same bits (losses, weights and Adam's moments after
/// several steps), whatever the number of ranges.
/// </summary>
public class ParallelStepTests
{
    /// <summary>Every loss term of every step, then each parameter's values and Adam's two moments after the last step.</summary>
    private sealed record Trained(List<double> Losses, Dictionary<string, float[]> Parameters, IReadOnlyList<AdamParameterState> Adam);

    private static Trained Train(VaeNetworkSpec spec, int[] batchRows, StepPartition partition)
    {
        const long seed = 3;
        using var model = VaeModel.Create(spec, seed, "cpu");
        if (spec.Likelihood == VaeLikelihood.Gaussian)
        {
            model.Standardization = new FeatureStandardization(new float[spec.InputSize], Enumerable.Repeat(2f, spec.InputSize).ToArray());
        }

        using var optimizer = new FlatAdam(model.Network.named_parameters(), 1e-3, partition);
        using var step = CpuMlpStep.TryCreate(model, partition)!;
        using var generator = model.CreateGeneratorAfterInit(seed);
        var losses = new List<double>();
        var random = new Random(7);
        foreach (var rows in batchRows)
        {
            using var scope = torch.NewDisposeScope();

            // MNIST-like rows: mostly 0, the rest in (0, 1]; for the Gaussian, standardized-looking values of both signs.
            var pixels = Enumerable.Range(0, rows * spec.InputSize)
                .Select(_ => spec.Likelihood == VaeLikelihood.Gaussian ? (float)((random.NextDouble() * 4) - 2) : random.NextDouble() < 0.8 ? 0f : (float)random.NextDouble())
                .ToArray();
            var x = torch.tensor(pixels, [rows, spec.InputSize]);
            var (loss, reconstruction, kl) = step.Run(x, generator, beta: 1.0);
            optimizer.Step();
            losses.AddRange([loss, reconstruction, kl, optimizer.LastLargestGradient]);
        }

        var parameters = model.Network.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        return new Trained(losses, parameters, optimizer.GetState());
    }

    public static TheoryData<int[], VaeLikelihood, int> Cases => new()
    {
        // The report's network at full and partial batches (the epoch's last batch is partial).
        { [400], VaeLikelihood.Bernoulli, 2 },
        { [400], VaeLikelihood.Gaussian, 2 },

        // Two hidden layers each side; three ranges, so boundaries fall at other places than halves.
        { [64, 32], VaeLikelihood.Bernoulli, 3 },
        { [64, 32], VaeLikelihood.Gaussian, 3 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Several_threads_give_the_single_thread_steps_bits(int[] hidden, VaeLikelihood likelihood, int workers)
    {
        var spec = VaeNetworkSpec.Mlp(784, hidden, 2) with { Likelihood = likelihood };
        int[] batches = [128, 128, 97, 128, 5, 1];

        // Minimum work 1: every pass that can be cut is cut, even the small layers' and a one-row batch's.
        var parallel = new StepPartition(workers, minimumWork: 1);
        parallel.Parts(128, 1).Should().Be(workers * StepPartition.RangesPerWorker, "the test must actually cut the passes");
        var expected = Train(spec, batches, StepPartition.Serial);
        var actual = Train(spec, batches, parallel);

        actual.Losses.Should().Equal(expected.Losses);
        actual.Parameters.Keys.Should().Equal(expected.Parameters.Keys);
        foreach (var (name, values) in expected.Parameters)
        {
            BitsOf(actual.Parameters[name]).Should().Equal(BitsOf(values), $"the values of {name}");
        }

        for (var i = 0; i < expected.Adam.Count; i++)
        {
            actual.Adam[i].Step.Should().Be(expected.Adam[i].Step);
            BitsOf(actual.Adam[i].ExpAvg).Should().Equal(BitsOf(expected.Adam[i].ExpAvg), $"Adam's first moment of {expected.Adam[i].Name}");
            BitsOf(actual.Adam[i].ExpAvgSq).Should().Equal(BitsOf(expected.Adam[i].ExpAvgSq), $"Adam's second moment of {expected.Adam[i].Name}");
        }
    }

    [Fact]
    public void The_default_partition_keeps_a_one_row_step_on_one_thread_and_cuts_a_full_batch()
    {
        var partition = new StepPartition(2);

        // The output layer's bias and ReLU pass (784 values a row), at batch 1 and at batch 128.
        partition.Parts(1, 784).Should().Be(1);
        partition.Parts(128, 784).Should().Be(6, "128 × 784 / 16,384 units of work");
        StepPartition.Serial.Parts(128, 784).Should().Be(1);
    }

    [Theory]
    [InlineData(631_600, 8, 2)]
    [InlineData(631_601, 8, 3)]
    [InlineData(17, 8, 2)]
    [InlineData(97, 1, 3)]
    [InlineData(5, 1, 4)]
    public void The_ranges_cover_every_item_once_in_order_and_aligned(int count, int alignment, int workers)
    {
        var partition = new StepPartition(workers, minimumWork: 1);
        var ranges = new (int Part, int Start, int End)[partition.Parts(count, 1, alignment)];
        partition.For(count, 1, (part, start, end) => ranges[part] = (part, start, end), alignment);

        ranges[0].Start.Should().Be(0);
        ranges[^1].End.Should().Be(count);
        for (var i = 0; i < ranges.Length; i++)
        {
            ranges[i].Part.Should().Be(i);
            ranges[i].End.Should().BeGreaterThan(ranges[i].Start, "no range is empty");
            if (i > 0)
            {
                ranges[i].Start.Should().Be(ranges[i - 1].End);
                (ranges[i].Start % alignment).Should().Be(0);
            }
        }
    }

    [Fact]
    public void A_NaN_gradient_in_either_range_reaches_the_divergence_guard()
    {
        using var model = VaeModel.Create(VaeNetworkSpec.Mlp(784, [400], 2), 1, "cpu");
        var partition = new StepPartition(2, minimumWork: 1);
        using var optimizer = new FlatAdam(model.Network.named_parameters(), 1e-3, partition);
        using (torch.no_grad())
        {
            // The last parameter lies in the second range.
            using var element = model.Network.named_parameters().Last().parameter.grad![0];
            element.fill_(float.NaN);
        }

        optimizer.Step();
        float.IsNaN(optimizer.LastLargestGradient).Should().BeTrue();
    }

    private static int[] BitsOf(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();
}
