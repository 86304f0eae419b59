using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Microsoft.ML;
using static Vae.ML.Tests.Persistence.PersistenceFixtures;

namespace Vae.ML.Tests.Persistence;

public class SafetensorsTests
{
    [Fact]
    public void Export_then_import_gives_identical_outputs()
    {
        var ml = new MLContext(seed: 0);
        using var original = Train(ml);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("vae.safetensors");

        original.ExportSafetensors(path);
        using var imported = VaeTransformer.ImportSafetensors(ml, path, SmallOptions());

        imported.InputSize.Should().Be(original.InputSize);
        imported.History.Should().BeEmpty();
        imported.LatentColumnName.Should().Be("Z");
        ShouldBeBitwiseEqual(Outputs(imported, Probe()), Outputs(original, Probe()));
    }

    [Fact]
    public void Export_writes_the_PyTorch_names_shapes_and_metadata()
    {
        var ml = new MLContext(seed: 0);
        using var vae = Train(ml);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("vae.safetensors");
        vae.ExportSafetensors(path);

        var bytes = File.ReadAllBytes(path);
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        ((8 + headerLength) % 8).Should().Be(0, "the data starts 8-byte aligned");
        using var header = JsonDocument.Parse(bytes.AsMemory(8, headerLength));
        var tensors = header.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__")
            .ToDictionary(p => p.Name, p => (DType: p.Value.GetProperty("dtype").GetString(),
                Shape: p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                Offsets: p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray()));

        tensors.Keys.Should().BeEquivalentTo("fc1.weight", "fc1.bias", "fc21.weight", "fc21.bias", "fc22.weight", "fc22.bias",
            "fc3.weight", "fc3.bias", "fc4.weight", "fc4.bias");
        tensors["fc1.weight"].Shape.Should().Equal(32, 64);
        tensors["fc21.weight"].Shape.Should().Equal(3, 32);
        tensors["fc4.bias"].Shape.Should().Equal(64);
        tensors.Values.Should().OnlyContain(t => t.DType == "F32");

        // The bytes of fc21.weight are the model's values, little-endian float32.
        var (_, _, offsets) = tensors["fc21.weight"];
        var stored = Enumerable.Range(0, 3 * 32)
            .Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(8 + headerLength + (int)offsets[0] + 4 * i))).ToArray();
        stored.Should().Equal(vae.Model.GetParameters().Single(p => p.Name == "fc21.weight").Values);

        var metadata = header.RootElement.GetProperty("__metadata__").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        metadata.Should().Contain("format", "pt").And.Contain("input_size", "64").And.Contain("hidden_sizes", "32")
            .And.Contain("latent_dimension", "3").And.Contain("beta", "0.75").And.Contain("latent_column", "Z").And.Contain("score_column", "Anomaly");
    }

    [Fact]
    public void Import_converts_F64_F16_and_BF16()
    {
        var ml = new MLContext(seed: 0);
        using var vae = Train(ml, SmallOptions([8]), rows: 64);
        var parameters = vae.Model.GetParameters();
        using var scratch = new ScratchDirectory();
        foreach (var dtype in new[] { "F64", "F16", "BF16" })
        {
            var path = scratch.File(dtype + ".safetensors");
            File.WriteAllBytes(path, Build(parameters.Select(p => new Tensor(p.Name, dtype, p.Shape, Encode(p.Values, dtype))).ToList()));
            using var imported = VaeTransformer.ImportSafetensors(ml, path, SmallOptions([8]));
            var tolerance = dtype == "F64" ? 0 : dtype == "F16" ? 1e-3 : 1e-2;
            var actual = imported.Model.GetParameters().SelectMany(p => p.Values).ToArray();
            var expected = parameters.SelectMany(p => p.Values).ToArray();
            actual.Zip(expected).Should().OnlyContain(p => Math.Abs(p.First - p.Second) <= tolerance * Math.Max(1, Math.Abs(p.Second)), dtype);
        }
    }

    public static TheoryData<string, string> HostileFiles()
    {
        var data = new TheoryData<string, string>();
        // Each case breaks one rule of the valid file of ValidTensors() (the VAE 4-[3]-1): (kind, expected message fragment).
        foreach (var (name, fragment) in new[]
        {
            ("header-length-beyond-file", "header claims"),
            ("header-length-huge", "header claims 18446744073709551615 bytes"),
            ("not-json", "not valid JSON"),
            ("not-an-object", "does not start with '{'"),
            ("duplicate-name", "names 'fc1.bias' twice"),
            ("offsets-out-of-bounds", "outside the"),
            ("offsets-reversed", "data offsets [8, 4]"),
            ("overlap", "overlaps another one"),
            ("gap", "gap of unused bytes"),
            ("not-covering", "cover"),
            ("size-mismatch", "needs 8 bytes but its data offsets span 4"),
            ("shape-overflow", "overflows"),
            ("negative-shape", "not a non-negative integer"),
            ("unknown-dtype", "unknown dtype 'F33'"),
            ("integer-dtype", "has dtype I32; expected F32"),
            ("extra-field", "unexpected or repeated field 'extra'"),
            ("metadata-not-strings", "metadata 'a' is not a string"),
            ("missing-tensor", "missing [fc4.bias]"),
            ("unexpected-tensor", "unexpected [fc5.weight]"),
            ("wrong-shape", "tensor 'fc21.weight' has shape [2, 3]; the VAE 4-3-1 of the options needs [1, 3]"),
            ("no-fc1", "needs a 2-D tensor 'fc1.weight'"),
            ("too-short", "fewer than the 8-byte header length"),
        })
        {
            data.Add(name, fragment);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(HostileFiles))]
    public void Hostile_files_are_rejected_with_a_clear_message(string kind, string fragment)
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File(kind + ".safetensors");
        File.WriteAllBytes(path, HostileFile(kind));
        var options = SmallOptions([3]);
        options.LatentDimension = 1;

        var import = () => VaeTransformer.ImportSafetensors(new MLContext(), path, options);

        import.Should().Throw<InvalidDataException>().Which.Message.Should().Contain(Path.GetFullPath(path)).And.Contain(fragment);
    }

    [Fact]
    public void The_valid_base_of_the_hostile_files_imports()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File("valid.safetensors");
        File.WriteAllBytes(path, Build(ValidTensors()));
        var options = SmallOptions([3]);
        options.LatentDimension = 1;

        using var vae = VaeTransformer.ImportSafetensors(new MLContext(), path, options);

        vae.InputSize.Should().Be(4);
        vae.Model.GetParameters().Single(p => p.Name == "fc21.weight").Values.Should().Equal(
            ValidTensors().Single(t => t.Name == "fc21.weight").Data.Chunk(4).Select(b => BitConverter.ToSingle(b)));
    }

    [Fact]
    public void Import_checks_its_options()
    {
        var options = SmallOptions();
        options.LatentColumnName = options.FeatureColumnName;
        FluentActions.Invoking(() => VaeTransformer.ImportSafetensors(new MLContext(), "unused.safetensors", options))
            .Should().Throw<ArgumentException>().WithMessage("*collides*");
        options = SmallOptions();
        options.HiddenSizes = [];
        FluentActions.Invoking(() => VaeTransformer.ImportSafetensors(new MLContext(), "unused.safetensors", options))
            .Should().Throw<ArgumentOutOfRangeException>();
    }

    internal sealed record Tensor(string Name, string DType, long[] Shape, byte[] Data);

    /// <summary>The tensors of the VAE 4-[3]-1, F32, values 0.5, 1.5, …</summary>
    private static List<Tensor> ValidTensors()
    {
        var shapes = new (string, long[])[]
        {
            ("fc1.weight", [3, 4]), ("fc1.bias", [3]), ("fc21.weight", [1, 3]), ("fc21.bias", [1]), ("fc22.weight", [1, 3]),
            ("fc22.bias", [1]), ("fc3.weight", [3, 1]), ("fc3.bias", [3]), ("fc4.weight", [4, 3]), ("fc4.bias", [4]),
        };
        var next = 0.5f;
        return shapes.Select(s => new Tensor(s.Item1, "F32", s.Item2,
            Encode(Enumerable.Range(0, (int)s.Item2.Aggregate(1L, (a, b) => a * b)).Select(_ => next++).ToArray(), "F32"))).ToList();
    }

    private static byte[] HostileFile(string kind)
    {
        var tensors = ValidTensors();
        string? header = null;
        switch (kind)
        {
            case "header-length-beyond-file":
                return Patch(Build(tensors), 0, 1_000_000);
            case "header-length-huge":
                return Patch(Build(tensors), 0, ulong.MaxValue);
            case "not-json":
                header = "{\"fc1.weight\": {\"dtype\": \"F32\", ";
                break;
            case "not-an-object":
                header = "[1, 2, 3]";
                break;
            case "duplicate-name":
                header = HeaderJson(tensors).Replace("\"fc21.bias\"", "\"fc1.bias\"");
                break;
            case "offsets-out-of-bounds":
                tensors[^1] = tensors[^1] with { Data = [] };
                header = HeaderJson(ValidTensors());
                break;
            case "offsets-reversed":
                header = HeaderJson(tensors, offsetsOverride: ("fc1.bias", [8, 4]));
                break;
            case "overlap":
                header = HeaderJson(tensors, offsetsOverride: ("fc1.bias", [40, 52]));
                break;
            case "gap":
                header = HeaderJson(tensors, offsetsOverride: ("fc1.bias", [52, 64]));
                break;
            case "not-covering":
                tensors.Add(new Tensor("zz.padding", "F32", [0], new byte[8]));
                header = HeaderJson(tensors, offsetsOverride: ("zz.padding", [180, 180]));
                break;
            case "size-mismatch":
                header = HeaderJson(tensors, shapeOverride: ("fc21.bias", [2]));
                break;
            case "shape-overflow":
                header = HeaderJson(tensors, shapeOverride: ("fc21.bias", [4611686018427387904, 4]));
                break;
            case "negative-shape":
                header = HeaderJson(tensors, shapeOverride: ("fc21.bias", [-1]));
                break;
            case "unknown-dtype":
                tensors[3] = tensors[3] with { DType = "F33" };
                break;
            case "integer-dtype":
                tensors[3] = tensors[3] with { DType = "I32" };
                break;
            case "extra-field":
                header = HeaderJson(tensors).Replace("\"dtype\"", "\"extra\":1,\"dtype\"");
                break;
            case "metadata-not-strings":
                header = HeaderJson(tensors).Replace("\"__metadata__\":{}", "\"__metadata__\":{\"a\":1}");
                break;
            case "missing-tensor":
                tensors.RemoveAt(tensors.Count - 1);
                break;
            case "unexpected-tensor":
                tensors.Add(new Tensor("fc5.weight", "F32", [1], new byte[4]));
                break;
            case "wrong-shape":
                tensors[2] = tensors[2] with { Shape = [2, 3], Data = new byte[24] };
                break;
            case "no-fc1":
                tensors[0] = tensors[0] with { Name = "encoder.weight" };
                break;
            case "too-short":
                return [1, 0, 0];
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }

        return Build(tensors, header);
    }

    /// <summary>A safetensors file: 8-byte length, JSON header (given or written from the tensors), data.</summary>
    private static byte[] Build(List<Tensor> tensors, string? header = null)
    {
        var json = Encoding.UTF8.GetBytes(header ?? HeaderJson(tensors));
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Length);
        return [.. length, .. json, .. tensors.SelectMany(t => t.Data)];
    }

    private static string HeaderJson(List<Tensor> tensors, (string Name, long[] Shape)? shapeOverride = null, (string Name, long[] Offsets)? offsetsOverride = null)
    {
        var parts = new List<string> { "\"__metadata__\":{}" };
        long offset = 0;
        foreach (var t in tensors)
        {
            var shape = shapeOverride is { } s && s.Name == t.Name ? s.Shape : t.Shape;
            long[] offsets = offsetsOverride is { } o && o.Name == t.Name ? o.Offsets : [offset, offset + t.Data.Length];
            offset += t.Data.Length;
            parts.Add($"\"{t.Name}\":{{\"dtype\":\"{t.DType}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{string.Join(",", offsets)}]}}");
        }

        return "{" + string.Join(",", parts) + "}";
    }

    private static byte[] Patch(byte[] file, int at, ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(at), value);
        return file;
    }

    private static byte[] Encode(float[] values, string dtype)
    {
        var size = dtype switch { "F64" => 8, "F32" => 4, _ => 2 };
        var bytes = new byte[values.Length * size];
        for (var i = 0; i < values.Length; i++)
        {
            var span = bytes.AsSpan(i * size);
            switch (dtype)
            {
                case "F64": BinaryPrimitives.WriteDoubleLittleEndian(span, values[i]); break;
                case "F32": BinaryPrimitives.WriteSingleLittleEndian(span, values[i]); break;
                case "F16": BinaryPrimitives.WriteHalfLittleEndian(span, (Half)values[i]); break;
                default: BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)(BitConverter.SingleToUInt32Bits(values[i]) >> 16)); break;
            }
        }

        return bytes;
    }
}
