using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Vae.ML.Tests.Core;
using static Vae.ML.Tests.Persistence.PersistenceFixtures;

namespace Vae.ML.Tests.Persistence;

/// <summary><c>mlContext.Model.Save/Load</c> of a chain holding a VaeTransformer, in this process and in a fresh one.</summary>
public class MlNetModelTests
{
    /// <summary>Input rows as the fresh process sees them: a single vector column (no label).</summary>
    private sealed class PixelRow
    {
        [VectorType(SyntheticData.Width)]
        public float[] Pixels { get; set; } = [];
    }

    private static (ITransformer Model, IDataView Data, DataViewSchema InputSchema) TrainChain(MLContext ml, PixelRow[] rows)
    {
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = SmallOptions();
        options.FeatureColumnName = "Features";
        var pipeline = ml.Transforms.Concatenate("Features", "Pixels")
            .Append(ml.Transforms.Vae(options))
            .Append(ml.Transforms.NormalizeMinMax("ZNormalized", "Z"));
        return (pipeline.Fit(data), data, data.Schema);
    }

    private static PixelRow[] Rows(int count, int seed) => SyntheticData.Rows(count, seed).Select(r => new PixelRow { Pixels = r.Features }).ToArray();

    [Fact]
    public void Chain_round_trips_in_process_with_types_and_values()
    {
        var ml = new MLContext(seed: 0);
        var (model, data, inputSchema) = TrainChain(ml, Rows(256, 1));
        using var scratch = new ScratchDirectory();
        var path = scratch.File("chain.zip");
        ml.Model.Save(model, inputSchema, path);

        var loaded = new MLContext(seed: 3).Model.Load(path, out var loadedSchema);

        loadedSchema["Pixels"].Type.Should().Be(inputSchema["Pixels"].Type);
        var chain = loaded.Should().BeAssignableTo<IEnumerable<ITransformer>>().Subject.ToList();
        chain.Select(t => t.GetType()).Should().Equal(typeof(ColumnConcatenatingTransformer), typeof(VaeTransformer), typeof(NormalizingTransformer));
        var vae = (VaeTransformer)chain[1];
        var original = (VaeTransformer)((IEnumerable<ITransformer>)model).ElementAt(1);
        vae.History.Should().Equal(original.History);
        vae.Beta.Should().Be(original.Beta);

        var expected = model.Transform(data);
        var actual = loaded.Transform(data);
        actual.Schema.Select(c => (c.Name, c.Type.ToString())).Should().Equal(expected.Schema.Select(c => (c.Name, c.Type.ToString())));
        actual.Schema["ZNormalized"].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 3));
        foreach (var column in new[] { "Z", "LatentLogVariance", "Reconstruction", "ZNormalized" })
        {
            Bits(actual.GetColumn<float[]>(column)).Should().Equal(Bits(expected.GetColumn<float[]>(column)), column);
        }

        Bits(actual.GetColumn<float>("Anomaly").Select(v => new[] { v })).Should().Equal(Bits(expected.GetColumn<float>("Anomaly").Select(v => new[] { v })));

        var engine = ml.Model.CreatePredictionEngine<PixelRow, ScoredRow>(loaded);
        var first = Rows(1, 1)[0];
        engine.Predict(first).Z.Should().Equal(vae.Encode(first.Pixels));
        vae.Dispose();
        original.Dispose();
    }

    [Fact]
    public async Task Chain_loads_in_a_fresh_process_bit_for_bit()
    {
        var loader = typeof(MlNetModelTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "ModelLoaderPath").Value!;
        File.Exists(loader).Should().BeTrue($"the test project builds the model loader at {loader}");

        var ml = new MLContext(seed: 0);
        var rows = Rows(200, 1);
        var (model, data, inputSchema) = TrainChain(ml, rows);
        using var scratch = new ScratchDirectory();
        var modelPath = scratch.File("chain.zip");
        var inputPath = scratch.File("input.f32");
        var outputPath = scratch.File("output.json");
        ml.Model.Save(model, inputSchema, modelPath);
        File.WriteAllBytes(inputPath, MemoryMarshal.AsBytes(rows.SelectMany(r => r.Pixels).ToArray().AsSpan()).ToArray());

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { loader, modelPath, inputPath, outputPath })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        process.ExitCode.Should().Be(0, $"the loader failed:\n{await stdout}\n{await stderr}");

        using var report = JsonDocument.Parse(File.ReadAllText(outputPath));
        var root = report.RootElement;
        root.GetProperty("VaeMlLoadedBeforeModelLoad").GetBoolean().Should().BeFalse("the fresh process must not know Vae.ML before loading");
        root.GetProperty("VaeMlLoadedAfterModelLoad").GetBoolean().Should().BeTrue();
        root.GetProperty("Transformers").EnumerateArray().Select(e => e.GetString()).Should().Equal(
            typeof(ColumnConcatenatingTransformer).FullName, typeof(VaeTransformer).FullName, typeof(NormalizingTransformer).FullName);

        var expected = model.Transform(data);
        root.GetProperty("Schema").EnumerateArray().Select(c => (c.GetProperty("Name").GetString(), c.GetProperty("Type").GetString()))
            .Should().Equal(expected.Schema.Select(c => ((string?)c.Name, (string?)c.Type.ToString())));
        var columns = root.GetProperty("Columns");
        foreach (var column in new[] { "Pixels", "Features", "Z", "LatentLogVariance", "Reconstruction", "ZNormalized" })
        {
            Bits(columns, column).Should().Equal(Bits(expected.GetColumn<float[]>(column)), column);
        }

        Bits(columns, "Anomaly").Should().Equal(Bits(expected.GetColumn<float>("Anomaly").Select(v => new[] { v })));
        Bits(columns, "Z").Should().HaveCount(200 * 3);
        foreach (var transformer in (IEnumerable<ITransformer>)model)
        {
            (transformer as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public void A_corrupt_entry_inside_the_zip_is_reported()
    {
        var ml = new MLContext(seed: 0);
        var (model, _, inputSchema) = TrainChain(ml, Rows(64, 1));
        using var scratch = new ScratchDirectory();
        var path = scratch.File("chain.zip");
        ml.Model.Save(model, inputSchema, path);
        using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Update))
        {
            var entry = zip.Entries.Single(e => e.Name == "VaeModel.safetensors");
            byte[] bytes;
            using (var read = entry.Open())
            using (var copy = new MemoryStream())
            {
                read.CopyTo(copy);
                bytes = copy.ToArray();
            }

            bytes[^4] ^= 1; // a weight of fc4.bias, the last tensor
            var name = entry.FullName;
            entry.Delete();
            using var write = zip.CreateEntry(name).Open();
            write.Write(bytes);
        }

        var load = () => new MLContext().Model.Load(path, out _);
        load.Should().Throw<Exception>().Where(e => Flatten(e).Any(x => x is InvalidDataException && x.Message.Contains("VaeModel.safetensors") && x.Message.Contains("SHA-256")));
    }

    private sealed class ScoredRow
    {
        public float[] Z { get; set; } = [];
    }

    private static IEnumerable<Exception> Flatten(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            yield return x;
        }
    }

    private static List<uint> Bits(IEnumerable<float[]> rows) => rows.SelectMany(r => r).Select(BitConverter.SingleToUInt32Bits).ToList();

    private static List<uint> Bits(JsonElement columns, string name)
        => columns.GetProperty(name).EnumerateArray().SelectMany(r => r.EnumerateArray()).Select(v => v.GetUInt32()).ToList();
}
