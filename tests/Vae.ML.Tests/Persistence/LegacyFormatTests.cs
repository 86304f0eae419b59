using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Persistence;

namespace Vae.ML.Tests.Persistence;

/// <summary>
/// Models saved by Vae.ML before the move to safetensors: a 16-8-2 VAE written by the version-1 code as a ".vae" file
/// and inside an ML.NET zip (Concatenate → Vae), with its outputs on four rows as float bits (TestData/).
/// </summary>
public class LegacyFormatTests
{
    private const string Name = "legacy-v1-16-8-2";

    private sealed class PixelRow
    {
        [VectorType(16)]
        public float[] Pixels { get; set; } = [];
    }

    private sealed class Expected
    {
        public uint[] Input { get; set; } = [];

        public uint[] Mu { get; set; } = [];

        public uint[] LogVariance { get; set; } = [];

        public uint[] Reconstruction { get; set; } = [];

        public uint[] Score { get; set; } = [];
    }

    private static string TestData(string extension) => Path.Combine(AppContext.BaseDirectory, "Persistence", "TestData", Name + extension);

    private static Expected Outputs() => JsonSerializer.Deserialize<Expected>(File.ReadAllText(TestData(".expected.json")), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;

    private static float[] Floats(uint[] bits) => bits.Select(BitConverter.UInt32BitsToSingle).ToArray();

    private static uint[] Bits(IEnumerable<float> values) => values.Select(BitConverter.SingleToUInt32Bits).ToArray();

    private static void ShouldGiveTheRecordedOutputs(VaeTransformer vae)
    {
        var expected = Outputs();
        var input = Floats(expected.Input);
        var mu = vae.Encode(input, out var logVariance);
        Bits(mu).Should().Equal(expected.Mu);
        Bits(logVariance).Should().Equal(expected.LogVariance);
        Bits(vae.Reconstruct(input)).Should().Equal(expected.Reconstruction);
        Bits(vae.Score(input)).Should().Equal(expected.Score);
    }

    [Fact]
    public void A_version_1_vae_file_loads_with_identical_outputs_and_history()
    {
        var ml = new MLContext(seed: 0);
        using var vae = VaeTransformer.Load(ml, TestData(".vae"), "cpu");

        (vae.InputSize, vae.LatentDimension, vae.Beta).Should().Be((16, 2, 0.5));
        vae.HiddenSizes.Should().Equal(8);
        (vae.FeatureColumnName, vae.LatentColumnName, vae.ScoreColumnName).Should().Be(("Features", "Z", "Anomaly"));
        vae.History.Should().Equal(JsonSerializer.Deserialize<VaeEpochMetrics[]>(File.ReadAllText(TestData(".history.json"))));
        ShouldGiveTheRecordedOutputs(vae);

        using var stream = File.OpenRead(TestData(".vae"));
        using var fromStream = VaeTransformer.Load(ml, stream, "cpu");
        stream.Position.Should().Be(stream.Length);
        ShouldGiveTheRecordedOutputs(fromStream);
    }

    [Fact]
    public void A_version_1_model_saved_again_is_upgraded_to_safetensors_unchanged()
    {
        var ml = new MLContext(seed: 0);
        using var legacy = VaeTransformer.Load(ml, TestData(".vae"), "cpu");
        using var buffer = new MemoryStream();
        legacy.Save(buffer);
        var bytes = buffer.ToArray();

        var file = VaeModelFormat.Read(new MemoryStream(bytes), "upgraded", bytes.Length);
        file.FormatVersion.Should().Be(VaeModelFormat.CurrentVersion);
        using var upgraded = file.Snapshot.ToTransformer(ml, "cpu");
        upgraded.History.Should().Equal(legacy.History);
        ShouldGiveTheRecordedOutputs(upgraded);
    }

    [Fact]
    public void An_ML_NET_zip_saved_by_version_1_loads_with_identical_outputs()
    {
        var ml = new MLContext(seed: 0);
        var model = ml.Model.Load(TestData(".zip"), out var inputSchema);
        inputSchema["Pixels"].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 16));
        var expected = Outputs();
        var input = Floats(expected.Input);
        var rows = Enumerable.Range(0, 4).Select(i => new PixelRow { Pixels = input[(i * 16)..((i + 1) * 16)] }).ToArray();

        var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));

        Bits(scored.GetColumn<float[]>("Z").SelectMany(v => v)).Should().Equal(expected.Mu);
        Bits(scored.GetColumn<float[]>("LatentLogVariance").SelectMany(v => v)).Should().Equal(expected.LogVariance);
        Bits(scored.GetColumn<float[]>("Reconstruction").SelectMany(v => v)).Should().Equal(expected.Reconstruction);
        Bits(scored.GetColumn<float>("Anomaly")).Should().Equal(expected.Score);
        foreach (var transformer in (IEnumerable<ITransformer>)model)
        {
            (transformer as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public void A_version_1_file_is_still_checked_completely()
    {
        var bytes = File.ReadAllBytes(TestData(".vae"));
        for (var length = 0; length < bytes.Length; length++)
        {
            var cut = bytes[..length];
            FluentActions.Invoking(() => VaeModelFormat.Read(new MemoryStream(cut), "old", cut.Length))
                .Should().Throw<InvalidDataException>($"length {length}").Which.Message.Should().StartWith("old ");
        }

        var flipped = (byte[])bytes.Clone();
        flipped[^40] ^= 1;
        FluentActions.Invoking(() => VaeModelFormat.Read(new MemoryStream(flipped), "old", flipped.Length))
            .Should().Throw<InvalidDataException>().WithMessage("old is corrupt: its SHA-256 checksum does not match its contents.");
        FluentActions.Invoking(() => VaeModelFormat.Read(new MemoryStream([.. bytes, 0]), "old", bytes.Length + 1))
            .Should().Throw<InvalidDataException>().WithMessage("old is corrupt: unexpected bytes follow the model's checksum.");
    }
}
