using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Anomaly;
using Vae.ML.Tests.Persistence;
using static Vae.ML.Tests.Anomaly.AnomalyTestData;

namespace Vae.ML.Tests.Anomaly;

/// <summary>The detector through <c>mlContext.Model.Save/Load</c>, in this process and in a fresh one.</summary>
public class VaeAnomalyPersistenceTests
{
    [Fact]
    public void Save_and_Load_keep_scores_bit_for_bit_and_a_changed_threshold()
    {
        var ml = new MLContext(seed: 0);
        var train = Load(ml, Rows(128, 0, seed: 1));
        using var trained = ml.AnomalyDetection.Trainers.Vae(SmallOptions(), contamination: 0.2).Fit(train);
        using var detector = ml.AnomalyDetection.ChangeModelThreshold(trained, trained.Threshold * 1.5f);
        var data = Load(ml, Rows(30, 10, seed: 2));
        using var scratch = new ScratchDirectory();
        var path = scratch.File("detector.zip");
        ml.Model.Save(detector, train.Schema, path);
        ml.Model.Save(trained, train.Schema, scratch.File("trained.zip"));

        var loaded = new MLContext(seed: 9).Model.Load(path, out var schema).Should().BeOfType<VaeAnomalyTransformer>().Subject;
        using var reloadedTrained = (VaeAnomalyTransformer)new MLContext().Model.Load(scratch.File("trained.zip"), out _);

        schema["Features"].Type.Should().Be(train.Schema["Features"].Type);
        loaded.Threshold.Should().Be(detector.Threshold);
        loaded.Contamination.Should().BeNull();
        reloadedTrained.Threshold.Should().Be(trained.Threshold);
        reloadedTrained.Contamination.Should().Be(0.2);
        var expected = detector.Transform(data);
        var actual = loaded.Transform(data);
        actual.Schema.Select(c => (c.Name, c.Type)).Should().Equal(expected.Schema.Select(c => (c.Name, c.Type)));
        actual.GetColumn<float>("Score").Select(BitConverter.SingleToUInt32Bits)
            .Should().Equal(expected.GetColumn<float>("Score").Select(BitConverter.SingleToUInt32Bits));
        actual.GetColumn<bool>("PredictedLabel").Should().Equal(expected.GetColumn<bool>("PredictedLabel"));
        ml.AnomalyDetection.Evaluate(actual).AreaUnderRocCurve.Should().Be(ml.AnomalyDetection.Evaluate(expected).AreaUnderRocCurve);
        loaded.Dispose();
    }

    [Fact]
    public void A_pipeline_that_scales_raw_values_then_detects_round_trips()
    {
        var ml = new MLContext(seed: 0);
        // Raw values on another scale: the pipeline's NormalizeMinMax maps the training rows onto [0, 1] for the VAE;
        // scored rows may land outside it.
        Row[] Raw(Row[] rows) => rows.Select(r => new Row { Features = r.Features.Select(v => 50 + 200 * v).ToArray(), Label = r.Label }).ToArray();
        var train = Load(ml, Raw(Rows(128, 0, seed: 1)));
        var data = Load(ml, Raw(Rows(30, 10, seed: 2)));
        var pipeline = ml.Transforms.NormalizeMinMax("Features", fixZero: false).Append(ml.AnomalyDetection.Trainers.Vae(SmallOptions()));
        var model = pipeline.Fit(train);
        using var scratch = new ScratchDirectory();
        ml.Model.Save(model, train.Schema, scratch.File("pipeline.zip"));

        var loaded = ml.Model.Load(scratch.File("pipeline.zip"), out _);

        var expected = model.Transform(data);
        var actual = loaded.Transform(data);
        actual.GetColumn<float>("Score").Select(BitConverter.SingleToUInt32Bits)
            .Should().Equal(expected.GetColumn<float>("Score").Select(BitConverter.SingleToUInt32Bits));
        actual.GetColumn<bool>("PredictedLabel").Should().Equal(expected.GetColumn<bool>("PredictedLabel"));
        ml.AnomalyDetection.Evaluate(expected).AreaUnderRocCurve.Should().BeGreaterThan(0.9);
        model.LastTransformer.Dispose();
        ((IEnumerable<ITransformer>)loaded).OfType<VaeAnomalyTransformer>().Single().Dispose();
    }

    [Fact]
    public async Task A_saved_detector_loads_and_scores_in_a_fresh_process()
    {
        var loader = typeof(VaeAnomalyPersistenceTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "ModelLoaderPath").Value!;
        var ml = new MLContext(seed: 0);
        var train = ml.Data.LoadFromEnumerable(Rows(128, 0, seed: 1).Select(r => new FeaturesOnly { Features = r.Features }));
        using var detector = ml.AnomalyDetection.Trainers.Vae(SmallOptions()).Fit(train);
        var rows = Rows(30, 10, seed: 2);
        var data = ml.Data.LoadFromEnumerable(rows.Select(r => new FeaturesOnly { Features = r.Features }));
        using var scratch = new ScratchDirectory();
        ml.Model.Save(detector, train.Schema, scratch.File("detector.zip"));
        File.WriteAllBytes(scratch.File("input.f32"), MemoryMarshal.AsBytes(rows.SelectMany(r => r.Features).ToArray().AsSpan()).ToArray());

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { loader, scratch.File("detector.zip"), scratch.File("input.f32"), scratch.File("output.json") })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        process.ExitCode.Should().Be(0, $"the loader failed:\n{await stdout}\n{await stderr}");

        using var report = JsonDocument.Parse(File.ReadAllText(scratch.File("output.json")));
        var root = report.RootElement;
        root.GetProperty("VaeMlLoadedBeforeModelLoad").GetBoolean().Should().BeFalse("the fresh process must not know Vae.ML before loading");
        root.GetProperty("Transformers").EnumerateArray().Select(e => e.GetString()).Should().Equal(typeof(VaeAnomalyTransformer).FullName);
        root.GetProperty("Schema").EnumerateArray().Select(c => (c.GetProperty("Name").GetString(), c.GetProperty("Type").GetString()))
            .Should().Equal(("Features", "Vector<Single, 16>"), ("Score", "Single"), ("PredictedLabel", "Boolean"));
        root.GetProperty("Columns").GetProperty("Score").EnumerateArray().Select(v => v[0].GetUInt32())
            .Should().Equal(detector.Transform(data).GetColumn<float>("Score").Select(BitConverter.SingleToUInt32Bits));
    }
}
