using Microsoft.ML;
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

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void An_empty_or_blank_path_is_refused_before_anything_is_written(string path)
    {
        // Path.GetFullPath("   ") is a valid file name on Linux: only the explicit check stops a file named "   ".
        var write = () => AtomicFile.Write(path, stream => stream.WriteByte(1));

        write.Should().Throw<ArgumentException>().Where(e => e.ParamName == "path");
        File.Exists(Path.GetFullPath("   ")).Should().BeFalse();
    }

    [Fact]
    public void A_null_writer_or_catalog_is_an_ArgumentNullException_and_leaves_no_file()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.Path);
        var target = folder.File("model.zip");

        var noWriter = () => AtomicFile.Write(target, null!);
        var noCatalog = () => ((ModelOperationsCatalog)null!).SaveAtomically(new MLContext(seed: 0).Transforms.Concatenate("A", "B").Fit(
            new MLContext(seed: 0).Data.LoadFromEnumerable(new[] { new TwoColumns() })), null, target);

        noWriter.Should().Throw<ArgumentNullException>().Where(e => e.ParamName == "write");
        noCatalog.Should().Throw<ArgumentNullException>().Where(e => e.ParamName == "catalog");
        folder.FileNames().Should().BeEmpty();
    }

    private sealed class TwoColumns
    {
        public float B { get; set; }
    }
}
