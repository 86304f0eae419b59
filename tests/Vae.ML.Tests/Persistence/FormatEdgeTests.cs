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

    [Fact]
    public void Tensor_shapes_count_elements_and_print_as_PyTorch_does()
    {
        var weight = new TensorShape("fc1.weight", [400, 784]);

        weight.ElementCount.Should().Be(313_600);
        weight.ShapeText.Should().Be("[400, 784]");
        new TensorShape("step", []).ElementCount.Should().Be(1, "a scalar holds one value");
        new TensorShape("conv", [2, 3, 4]).ElementCount.Should().Be(24);
        TensorShape.Describe([]).Should().Be("[]");
        var overflow = () => new TensorShape("huge", [long.MaxValue, 2]).ElementCount;
        overflow.Should().Throw<OverflowException>();
    }

    [Fact]
    public void Loading_a_model_logs_the_device_it_went_to()
    {
        var messages = new List<(string Source, string Message)>();
        var ml = new MLContext(seed: 0);
        using var vae = PersistenceFixtures.Train(ml);
        using var stream = new MemoryStream();
        vae.Save(stream);
        stream.Position = 0;
        var loading = new MLContext(seed: 0);
        loading.Log += (_, e) => messages.Add((e.Source, e.Message));

        using var loaded = VaeTransformer.Load(loading, stream, "cpu");

        messages.Should().Contain(m => m.Source == "Vae" && m.Message.Contains("Loaded VAE on cpu: ", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void An_empty_or_blank_path_is_refused_before_anything_is_written(string path)
    {
        // Path.GetFullPath("   ") is a valid file name on Linux: only the explicit check stops a file named "   ".
        var write = () => AtomicFile.Write(path, stream => stream.WriteByte(1));

        write.Should().Throw<ArgumentException>().Where(e => e.ParamName == "path");
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

    [Fact]
    public void A_directory_is_not_overwritten()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.File("model.bin"));

        var write = () => AtomicFile.Write(folder.File("model.bin"), stream => stream.WriteByte(1));

        write.Should().Throw<IOException>().WithMessage("Cannot save to '*model.bin': it is a directory.");
        Directory.Exists(folder.File("model.bin")).Should().BeTrue();
        folder.FileNames().Should().BeEmpty();
    }

    [Fact]
    public void A_failed_write_stops_the_writer_at_once()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.Path);
        var attempts = 0;
        var write = () =>
        {
            using (AtomicFile.InterceptStreams(_ => new ThrowingStream(() => new IOException($"fault {++attempts}"))))
            {
                AtomicFile.Write(folder.File("model.bin"), stream =>
                {
                    stream.WriteByte(1);
                    stream.WriteByte(2);
                    stream.WriteByte(3);
                });
            }
        };

        write.Should().Throw<IOException>().WithMessage("Could not save '*model.bin' (fault 1)*");
        attempts.Should().Be(1, "the first failure reaches the writer instead of being recorded and hidden");
    }

    [Fact]
    public void Failing_seeks_reach_the_writer_and_the_first_one_fails_the_save()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.Path);
        var seeks = 0;
        var caught = new List<string>();
        var write = () =>
        {
            using (AtomicFile.InterceptStreams(_ => new ThrowingStream(() => new IOException("write")) { SeekFault = () => new IOException($"seek {++seeks}") }))
            {
                AtomicFile.Write(folder.File("model.bin"), stream =>
                {
                    for (var i = 0; i < 2; i++)
                    {
                        try
                        {
                            stream.Seek(0, SeekOrigin.Begin);
                        }
                        catch (IOException e)
                        {
                            caught.Add(e.Message);
                        }
                    }
                });
            }
        };

        write.Should().Throw<IOException>().WithMessage("Could not save '*model.bin' (seek 1)*");
        caught.Should().Equal("seek 1", "seek 2");
        folder.FileNames().Should().BeEmpty();
    }

    [Fact]
    public void The_root_directory_names_no_file()
    {
        var write = () => AtomicFile.Write("/", stream => stream.WriteByte(1));

        write.Should().Throw<ArgumentException>().Where(e => e.ParamName == "path");
    }

    [Fact]
    public void The_stream_a_writer_gets_seeks_truncates_and_reports_like_the_file_behind_it()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.Path);
        var target = folder.File("data.bin");
        AtomicFile.Write(target, stream =>
        {
            stream.CanRead.Should().BeFalse();
            stream.CanWrite.Should().BeTrue();
            stream.CanSeek.Should().BeTrue();
            stream.Write([1, 2, 3, 4, 5, 6]);
            stream.Length.Should().Be(6);
            stream.Position = 1;
            stream.WriteByte(20);
            stream.Seek(-1, SeekOrigin.End).Should().Be(5);
            stream.WriteByte(60);
            stream.SetLength(7);
            stream.Position.Should().Be(6);
            stream.Flush();
            var read = () => stream.ReadByte();
            read.Should().Throw<NotSupportedException>();
        });

        File.ReadAllBytes(target).Should().Equal(1, 20, 3, 4, 5, 60, 0);
    }

    [Fact]
    public void A_writer_that_swallows_write_errors_fails_with_the_first_one_and_keeps_the_old_file()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.Path);
        var target = folder.File("model.bin");
        File.WriteAllBytes(target, [9, 9]);
        var faults = 0;
        var swallowing = () =>
        {
            using (AtomicFile.InterceptStreams(_ => new ThrowingStream(() => new IOException($"fault {++faults}"))))
            {
                AtomicFile.Write(target, stream =>
                {
                    foreach (var b in new byte[] { 1, 2 })
                    {
                        try
                        {
                            stream.WriteByte(b);
                        }
                        catch (IOException)
                        {
                            // A careless writer (ML.NET's zip writer was one) carries on.
                        }
                    }
                });
            }
        };

        swallowing.Should().Throw<IOException>().WithMessage($"Could not save '{target}' (fault 1)*")
            .WithInnerException<IOException>().WithMessage("fault 1");
        faults.Should().Be(2);
        File.ReadAllBytes(target).Should().Equal(9, 9);
        folder.FileNames().Should().Equal("model.bin");
    }

    [Fact]
    public void An_IOException_that_already_names_the_file_is_passed_on_unchanged()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.Path);
        var target = folder.File("model.bin");
        var original = new IOException($"disk full while writing '{target}'");

        var write = () => AtomicFile.Write(target, _ => throw original);

        write.Should().Throw<IOException>().Which.Should().BeSameAs(original);
        folder.FileNames().Should().BeEmpty();
    }

    [Fact]
    public void Interception_ends_with_its_scope_and_restores_an_outer_one()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.Path);
        var seen = new List<string>();
        using (AtomicFile.InterceptStreams(s => { seen.Add("outer"); return s; }))
        {
            using (AtomicFile.InterceptStreams(s => { seen.Add("inner"); return s; }))
            {
                AtomicFile.Write(folder.File("a"), s => s.WriteByte(1));
            }

            AtomicFile.Write(folder.File("b"), s => s.WriteByte(1));
        }

        AtomicFile.Write(folder.File("c"), s => s.WriteByte(1));
        seen.Should().Equal("inner", "outer");
    }

    /// <summary>A file stream stand-in whose every write fails with a fresh exception.</summary>
    private sealed class ThrowingStream(Func<Exception> fault) : Stream
    {
        public Func<Exception>? SeekFault { get; init; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => 0;

        public override long Position { get => 0; set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => throw fault();

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw (SeekFault?.Invoke() ?? new NotSupportedException());

        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private sealed class TwoColumns
    {
        public float B { get; set; }
    }
}
