using Vae.ML.Persistence;
using static Vae.ML.Tests.Reliability.TrainingTestSupport;

namespace Vae.ML.Tests.Reliability;

/// <summary>
/// The checkpoint reader (the model format's reader plus the training-state checks) on damaged real checkpoints: every
/// case ends in an <see cref="InvalidDataException"/> or reads back exactly the checkpoint that was written.
/// </summary>
public class CheckpointFuzzTests
{
    private static readonly Lazy<byte[]> Checkpoint = new(SmallCheckpointBytes);

    [Fact]
    public void Every_truncation_is_rejected()
    {
        var bytes = Checkpoint.Value;
        for (var length = 0; length < bytes.Length; length++)
        {
            var read = () => Read(bytes.AsSpan(0, length).ToArray());
            read.Should().Throw<InvalidDataException>($"a checkpoint cut to {length} of {bytes.Length} bytes is incomplete");
        }
    }

    [Fact]
    public void Random_byte_changes_are_rejected_or_change_nothing()
    {
        var bytes = Checkpoint.Value;
        var (run, columns, state) = Read(bytes);
        var random = new Random(20261126);
        var accepted = 0;
        for (var i = 0; i < 1000; i++)
        {
            var damaged = (byte[])bytes.Clone();
            var flips = 1 + random.Next(3);
            for (var f = 0; f < flips; f++)
            {
                damaged[random.Next(damaged.Length)] ^= (byte)(1 + random.Next(255));
            }

            (VaeCheckpointRun, VaeTransformer.ColumnNames, Torch.VaeTrainingState) result;
            try
            {
                result = Read(damaged);
            }
            catch (InvalidDataException)
            {
                continue;
            }

            // Accepted: only bytes that carry no information changed (e.g. the header's padding), so it must read back equal.
            accepted++;
            var (r, c, s) = result;
            (r with { HiddenSizes = run.HiddenSizes }).Should().Be(run);
            r.HiddenSizes.Should().Equal(run.HiddenSizes);
            c.Should().Be(columns);
            s.Epoch.Should().Be(state.Epoch);
            s.Parameters.Select(p => p.Values).Should().BeEquivalentTo(state.Parameters.Select(p => p.Values), o => o.WithStrictOrdering());
            s.CpuGeneratorState.Should().Equal(state.CpuGeneratorState);
        }

        accepted.Should().BeLessThan(50, "nearly every change to a checksummed file must be noticed");
    }

    private static (VaeCheckpointRun, VaeTransformer.ColumnNames, Torch.VaeTrainingState) Read(byte[] bytes)
        => VaeCheckpoint.Read(new MemoryStream(bytes), "fuzzed checkpoint", bytes.Length);
}
