using Vae.ML.Persistence;
using static Vae.ML.Tests.Reliability.TrainingTestSupport;

namespace Vae.ML.Tests.Persistence;

/// <summary>
/// Edge cases of the persistence helpers that the round-trip and fuzz tests pass over; each was a surviving Stryker
/// mutant (docs/testing.md, "Mutation testing"). Expected values are written out here, not computed by the code under test.
/// </summary>
public class FormatEdgeTests
{
    [Fact]
    public void Checkpoint_listing_takes_only_exact_checkpoint_names_in_numeric_epoch_order()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.Path);
        foreach (var name in new[]
                 {
                     "checkpoint-epoch-10.safetensors", "checkpoint-epoch-9.safetensors", "checkpoint-epoch-0002.safetensors",
                     "checkpoint-epoch-0003.safetensors.bak", "old-checkpoint-epoch-0004.safetensors", "checkpoint-epoch-.safetensors",
                     "checkpoint-epoch-1234567890.safetensors", "checkpoint-epoch-x5.safetensors",
                 })
        {
            File.WriteAllBytes(folder.File(name), []);
        }

        VaeCheckpoint.List(folder.Path).Select(c => (c.Epoch, Path.GetFileName(c.Path)))
            .Should().Equal((2, "checkpoint-epoch-0002.safetensors"), (9, "checkpoint-epoch-9.safetensors"), (10, "checkpoint-epoch-10.safetensors"));
        VaeCheckpoint.List(folder.File("missing")).Should().BeEmpty();
        VaeCheckpoint.FileName(7).Should().Be("checkpoint-epoch-0007.safetensors");
        VaeCheckpoint.FileName(12345).Should().Be("checkpoint-epoch-12345.safetensors");
    }
}
