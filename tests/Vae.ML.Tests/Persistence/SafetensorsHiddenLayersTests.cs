using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML;
using Vae.ML.Tests.Expectations;

namespace Vae.ML.Tests.Persistence;

/// <summary>
/// Safetensors with several hidden layers, both ways: the export's header is read here from the format's definition
/// (8-byte little-endian length, JSON header, raw little-endian data), not through Vae.ML's reader.
/// </summary>
public class SafetensorsHiddenLayersTests
{
    [Fact]
    public void Two_hidden_layers_export_as_fc1_1_and_fc3_1_and_import_with_the_options_beta_and_device()
    {
        const int width = 6;
        using var original = ReferenceVae.KnownWeights(width, [8, 5], latentDimension: 3, beta: 2.5);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("two-hidden.safetensors");

        original.ExportSafetensors(path);

        var bytes = File.ReadAllBytes(path);
        var headerLength = (int)BitConverter.ToUInt64(bytes, 0);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, headerLength));
        var data = bytes.AsSpan(8 + headerLength);
        var expectedShapes = new (string Name, long[] Shape)[]
        {
            ("fc1.weight", [8, 6]), ("fc1.bias", [8]), ("fc1_1.weight", [5, 8]), ("fc1_1.bias", [5]),
            ("fc21.weight", [3, 5]), ("fc21.bias", [3]), ("fc22.weight", [3, 5]), ("fc22.bias", [3]),
            ("fc3.weight", [5, 3]), ("fc3.bias", [5]), ("fc3_1.weight", [8, 5]), ("fc3_1.bias", [8]),
            ("fc4.weight", [6, 8]), ("fc4.bias", [6]),
        };
        header.RootElement.EnumerateObject().Select(p => p.Name).Where(n => n != "__metadata__")
            .Should().BeEquivalentTo(expectedShapes.Select(e => e.Name));
        var parameters = original.Model.GetParameters().ToDictionary(p => p.Name);
        foreach (var (name, shape) in expectedShapes)
        {
            var entry = header.RootElement.GetProperty(name);
            entry.GetProperty("dtype").GetString().Should().Be("F32", name);
            entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).Should().Equal(shape, name);
            var offsets = entry.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt32()).ToArray();
            MemoryMarshal.Cast<byte, float>(data[offsets[0]..offsets[1]]).ToArray().Should().Equal(parameters[name].Values, name);
        }

        var metadata = header.RootElement.GetProperty("__metadata__");
        metadata.GetProperty("hidden_sizes").GetString().Should().Be("8,5");
        metadata.GetProperty("latent_dimension").GetString().Should().Be("3");
        metadata.GetProperty("beta").GetString().Should().Be("2.5");

        var options = new VaeOptions { HiddenSizes = [8, 5], LatentDimension = 3, Beta = 4, Device = "cpu" };
        using var imported = VaeTransformer.ImportSafetensors(new MLContext(seed: 0), path, options);

        imported.Beta.Should().Be(4, "β comes from the options; the file's metadata is not consulted");
        imported.Device.Should().Be("cpu");
        imported.HiddenSizes.Should().Equal(8, 5);
        imported.LatentDimension.Should().Be(3);
        imported.InputSize.Should().Be(width);
        var x = Enumerable.Range(0, 4 * width).Select(i => i % 5 / 4f).ToArray();
        imported.Encode(x, out var logVar).Should().Equal(original.Encode(x, out var originalLogVar));
        logVar.Should().Equal(originalLogVar);
        var reference = new ReferenceVae(imported.Model.GetParameters());
        var scores = imported.Score(x);
        for (var r = 0; r < 4; r++)
        {
            var (bce, kl) = reference.LossAtMean(x.AsSpan(r * width, width));
            ((double)scores[r]).Should().BeApproximately(bce + 4 * kl, 1e-5 * (bce + 4 * kl), "the imported model scores with the options' β");
        }
    }
}
