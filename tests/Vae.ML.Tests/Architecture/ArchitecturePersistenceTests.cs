using Microsoft.ML;
using Vae.ML.Persistence;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Persistence;
using static Vae.ML.Tests.Reliability.TrainingTestSupport;

namespace Vae.ML.Tests.Architecture;

/// <summary><see cref="VaeOptions.Architecture"/> and <see cref="VaeOptions.ImageShape"/> survive every persistence path.</summary>
public class ArchitecturePersistenceTests
{
    /// <summary>SyntheticData rows (64 values) read as 1×8×8 images; a small convolutional VAE trains on them in seconds.</summary>
    private static VaeOptions ConvOptions(int epochs = 2) => new()
    {
        Architecture = VaeArchitecture.Convolutional,
        ImageShape = [1, 8, 8],
        HiddenSizes = [12],
        LatentDimension = 3,
        Epochs = epochs,
        BatchSize = 32,
        Beta = 0.5,
        Seed = 21,
        Device = "cpu",
    };

    private static void ShouldBeTheConvolutionalModel(VaeTransformer loaded, VaeTransformer original)
    {
        loaded.Architecture.Should().Be(VaeArchitecture.Convolutional);
        loaded.ImageShape.Should().Equal(1, 8, 8);
        loaded.HiddenSizes.Should().Equal(12);
        loaded.LatentDimension.Should().Be(3);
        var probe = PersistenceFixtures.Probe();
        PersistenceFixtures.ShouldBeBitwiseEqual(PersistenceFixtures.Outputs(loaded, probe), PersistenceFixtures.Outputs(original, probe));
    }

    [Fact]
    public void Save_and_Load_through_a_file_and_a_stream_keep_the_architecture()
    {
        var ml = new MLContext(seed: 0);
        using var vae = ml.Transforms.Vae(ConvOptions()).Fit(SyntheticData.Load(ml, 128));
        using var folder = new ScratchDirectory();

        vae.Save(folder.File("conv.safetensors"));
        using (var loaded = VaeTransformer.Load(ml, folder.File("conv.safetensors"), "cpu"))
        {
            ShouldBeTheConvolutionalModel(loaded, vae);
        }

        using var buffer = new MemoryStream();
        vae.Save(buffer);
        buffer.Position = 0;
        using var fromStream = VaeTransformer.Load(ml, buffer, "cpu");
        ShouldBeTheConvolutionalModel(fromStream, vae);
    }

    [Fact]
    public void The_safetensors_metadata_names_the_architecture_and_the_image_shape_under_format_version_3()
    {
        var ml = new MLContext(seed: 0);
        using var vae = ml.Transforms.Vae(ConvOptions()).Fit(SyntheticData.Load(ml, 128));
        using var folder = new ScratchDirectory();
        var path = folder.File("conv.safetensors");
        vae.ExportSafetensors(path);

        using var stream = File.OpenRead(path);
        var header = Safetensors.ReadHeader(stream, stream.Length, path);
        header.Metadata.Should().Contain("vae_ml_format_version", "4").And.Contain("architecture", "convolutional")
            .And.Contain("image_shape", "1,8,8").And.Contain("input_size", "64").And.Contain("hidden_sizes", "12");
        header.Entries.Select(e => e.Name).Should().StartWith(["enc_conv1.weight", "enc_conv1.bias"]).And.Contain("dec_deconv3.weight");

        // An MLP names its kind too, and writes no image shape when it has none.
        using var mlp = ml.Transforms.Vae(PersistenceFixtures.SmallOptions()).Fit(SyntheticData.Load(ml, 64));
        mlp.Save(folder.File("mlp.safetensors"));
        using var mlpStream = File.OpenRead(folder.File("mlp.safetensors"));
        var mlpHeader = Safetensors.ReadHeader(mlpStream, mlpStream.Length, "mlp");
        mlpHeader.Metadata.Should().Contain("architecture", "mlp").And.NotContainKey("image_shape");
    }

    [Fact]
    public void An_MLP_with_an_image_shape_keeps_it()
    {
        var ml = new MLContext(seed: 0);
        var options = PersistenceFixtures.SmallOptions();
        options.ImageShape = [1, 8, 8];
        using var vae = ml.Transforms.Vae(options).Fit(SyntheticData.Load(ml, 64));
        vae.Architecture.Should().Be(VaeArchitecture.Mlp);
        using var buffer = new MemoryStream();
        vae.Save(buffer);
        buffer.Position = 0;
        using var loaded = VaeTransformer.Load(ml, buffer, "cpu");
        loaded.Architecture.Should().Be(VaeArchitecture.Mlp);
        loaded.ImageShape.Should().Equal(1, 8, 8);
    }

    [Fact]
    public void MLContext_Model_Save_and_Load_keep_the_architecture()
    {
        var ml = new MLContext(seed: 0);
        var data = SyntheticData.Load(ml, 128);
        using var vae = ml.Transforms.Vae(ConvOptions()).Fit(data);
        using var folder = new ScratchDirectory();
        ml.Model.Save(vae, data.Schema, folder.File("conv.zip"));

        var loaded = ml.Model.Load(folder.File("conv.zip"), out _);
        using var loadedVae = loaded.Should().BeOfType<VaeTransformer>().Subject;
        ShouldBeTheConvolutionalModel(loadedVae, vae);
    }

    [Fact]
    public void A_convolutional_run_resumed_from_its_checkpoint_equals_an_uninterrupted_run_bit_for_bit()
    {
        var ml = new MLContext(seed: 0);
        var data = SyntheticData.Load(ml, 128);
        using var uninterrupted = ml.Transforms.Vae(ConvOptions(epochs: 3)).Fit(data);

        using var folder = new ScratchDirectory();
        var first = ConvOptions(epochs: 1);
        first.CheckpointDirectory = folder.Path;
        using (ml.Transforms.Vae(first).Fit(data))
        {
        }

        var (run, _, _) = VaeCheckpoint.Read(folder.File("checkpoint-epoch-0001.safetensors"));
        run.Architecture.Should().Be(VaeArchitecture.Convolutional);
        run.ImageShape.Should().Equal(1, 8, 8);

        var resumed = ConvOptions(epochs: 3);
        resumed.ResumeFrom = folder.File("checkpoint-epoch-0001.safetensors");
        using var continued = ml.Transforms.Vae(resumed).Fit(data);
        continued.Architecture.Should().Be(VaeArchitecture.Convolutional);
        continued.ShouldHaveIdenticalWeights(uninterrupted);

        // A different architecture is another run: refused, naming both.
        var other = ConvOptions(epochs: 3);
        other.Architecture = VaeArchitecture.Mlp;
        other.ResumeFrom = resumed.ResumeFrom;
        var resumeAsMlp = () => ml.Transforms.Vae(other).Fit(data);
        resumeAsMlp.Should().Throw<ArgumentException>().WithMessage("*was trained with the architecture (input-hidden-latent) conv 1x8x8-12-3, but this run has 64-12-3*");
    }

    [Fact]
    public void ImportSafetensors_rebuilds_a_convolutional_VAE_from_the_options()
    {
        var ml = new MLContext(seed: 0);
        using var vae = ml.Transforms.Vae(ConvOptions()).Fit(SyntheticData.Load(ml, 128));
        using var folder = new ScratchDirectory();
        vae.ExportSafetensors(folder.File("weights.safetensors"));

        var options = ConvOptions();
        using var imported = VaeTransformer.ImportSafetensors(ml, folder.File("weights.safetensors"), options);
        imported.Beta.Should().Be(0.5);
        ShouldBeTheConvolutionalModel(imported, vae);

        options.ImageShape = [4, 4, 4]; // 64 values too, but other layer shapes
        var wrongShape = () => VaeTransformer.ImportSafetensors(ml, folder.File("weights.safetensors"), options);
        wrongShape.Should().Throw<InvalidDataException>().WithMessage("*tensor 'enc_conv1.weight' has shape [32, 1, 3, 3]*needs [32, 4, 3, 3]*");

        options.ImageShape = null;
        var noShape = () => VaeTransformer.ImportSafetensors(ml, folder.File("weights.safetensors"), options);
        noShape.Should().Throw<ArgumentOutOfRangeException>().WithParameterName(nameof(VaeOptions.ImageShape));
    }

    [Fact]
    public void Architecture_metadata_that_lies_consistently_is_rejected_by_the_same_check_as_the_options()
    {
        var ml = new MLContext(seed: 0);
        using var vae = ml.Transforms.Vae(ConvOptions(epochs: 1)).Fit(SyntheticData.Load(ml, 64));
        using var buffer = new MemoryStream();
        vae.Save(buffer);
        var bytes = buffer.ToArray();

        void ShouldBeCorrupt(Action<Dictionary<string, string>> edit, string message)
        {
            var file = Rewrite(bytes, edit);
            var read = () => VaeModelFormat.Read(new MemoryStream(file), "hostile", file.Length);
            read.Should().Throw<InvalidDataException>().WithMessage(message);
        }

        ShouldBeCorrupt(m => m["architecture"] = "transformer", "hostile is corrupt: 'architecture' is 'transformer', not one of mlp, convolutional.");
        ShouldBeCorrupt(m => m.Remove("architecture"), "hostile is corrupt: its metadata lacks 'architecture'.");
        ShouldBeCorrupt(m => m.Remove("image_shape"), "hostile is corrupt: ImageShape is required for Architecture Convolutional*");
        ShouldBeCorrupt(m => m["image_shape"] = "1,6,8", "hostile is corrupt: ImageShape [1, 6, 8]*divisible by 4*");
        ShouldBeCorrupt(m => m["image_shape"] = "4,4,4", "hostile is corrupt: tensor 'enc_conv1.weight' is F32 [32, 1, 3, 3]; its architecture needs F32 [32, 4, 3, 3].");
        ShouldBeCorrupt(m => m["image_shape"] = "1,8,12", "hostile is corrupt: ImageShape [1, 8, 12] holds 96 values per row, but the feature column has 64*");
    }

    /// <summary>The file with <paramref name="edit"/> applied to its metadata and the header checksum recomputed: consistent, but lying.</summary>
    private static byte[] Rewrite(byte[] file, Action<Dictionary<string, string>> edit)
    {
        var header = Safetensors.ReadHeader(new MemoryStream(file), file.Length, "test");
        var metadata = header.Metadata.ToDictionary(m => m.Key, m => m.Value);
        edit(metadata);
        var tensors = header.Entries.Select(e => new Safetensors.RawTensor(e.Name, e.DType, e.Shape, file[(int)(header.DataStart + e.Begin)..(int)(header.DataStart + e.End)])).ToList();
        metadata[VaeModelFormat.Keys.HeaderSha256] = VaeModelFormat.HeaderSha256(metadata, tensors);
        using var buffer = new MemoryStream();
        Safetensors.Write(buffer, tensors, metadata);
        return buffer.ToArray();
    }
}
