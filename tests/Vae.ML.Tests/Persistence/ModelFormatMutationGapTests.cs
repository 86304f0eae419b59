using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Vae.ML.Persistence;
using Vae.ML.Tests.Likelihood;
using static Vae.ML.Tests.Persistence.PersistenceFixtures;

namespace Vae.ML.Tests.Persistence;

/// <summary>
/// The model format's writer and reader (<see cref="VaeModelFormat"/>, <see cref="Safetensors"/>,
/// <see cref="LegacyVaeModelFile"/>) and the public load/save entry points, check by check: written for the surviving
/// and uncovered Stryker mutants of those files (docs/testing.md, "Mutation testing"). The checksums and the layout are
/// recomputed here from docs/persistence.md, not by the code under test; forged files carry valid checksums.
/// </summary>
public class ModelFormatMutationGapTests
{
    /// <summary>A saved 64-8-3 MLP (β 0.75, columns Z and Anomaly), trained for 2 epochs.</summary>
    private static readonly Lazy<byte[]> Model = new(() =>
    {
        using var vae = Train(new MLContext(seed: 0), SmallOptions([8]), rows: 64);
        using var buffer = new MemoryStream();
        vae.Save(buffer);
        return buffer.ToArray();
    });

    private static VaeFile Read(byte[] bytes) => VaeModelFormat.Read(new MemoryStream(bytes), "m", bytes.Length);

    private static void ShouldBeRefused(byte[] bytes, string message)
        => FluentActions.Invoking(() => Read(bytes)).Should().Throw<InvalidDataException>().WithMessage(message);

    [Fact]
    public void The_checksums_are_the_documented_SHA_256_sums()
    {
        var bytes = Model.Value;
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var root = JsonNode.Parse(bytes.AsSpan(8, headerLength))!.AsObject();
        var metadata = root["__metadata__"]!.AsObject().ToDictionary(m => m.Key, m => m.Value!.GetValue<string>());

        // tensors_sha256: the data section's bytes, in file order.
        var data = bytes.AsSpan(8 + headerLength).ToArray();
        metadata["tensors_sha256"].Should().Be(Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant());

        // header_sha256: each item as a 4-byte little-endian UTF-8 byte count and the bytes: the number of metadata
        // entries but header_sha256, each entry in ordinal key order (key, value); the number of tensors, then per tensor
        // in data order its name, dtype, shape "a,b" and offsets "begin,end".
        var items = new List<string>();
        var entries = metadata.Where(m => m.Key != "header_sha256").OrderBy(m => m.Key, StringComparer.Ordinal).ToList();
        items.Add(entries.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        items.AddRange(entries.SelectMany(m => new[] { m.Key, m.Value }));
        var tensors = root.Where(p => p.Key != "__metadata__")
            .Select(p => (Name: p.Key, DType: p.Value!["dtype"]!.GetValue<string>(), Shape: p.Value["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray(),
                Offsets: p.Value["data_offsets"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray()))
            .OrderBy(t => t.Offsets[0]).ToList();
        items.Add(tensors.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var t in tensors)
        {
            items.AddRange([t.Name, t.DType, string.Join(",", t.Shape), $"{t.Offsets[0]},{t.Offsets[1]}"]);
        }

        var encoded = new List<byte>();
        foreach (var item in items)
        {
            var utf8 = Encoding.UTF8.GetBytes(item);
            encoded.AddRange(BitConverter.GetBytes(utf8.Length));
            encoded.AddRange(utf8);
        }

        metadata["header_sha256"].Should().Be(Convert.ToHexString(SHA256.HashData(encoded.ToArray())).ToLowerInvariant());
        tensors.Select(t => t.Name).Should().Equal("fc1.weight", "fc1.bias", "fc21.weight", "fc21.bias", "fc22.weight", "fc22.bias", "fc3.weight", "fc3.bias", "fc4.weight", "fc4.bias");
        tensors[0].Offsets.Should().Equal(0, 8 * 64 * 4);
    }

    [Fact]
    public void The_header_is_padded_with_spaces_so_the_data_starts_8_byte_aligned()
    {
        var bytes = Model.Value;
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = bytes.AsSpan(8, headerLength);
        var end = header.LastIndexOf((byte)'}');

        (headerLength % 8).Should().Be(0);
        header[(end + 1)..].ToArray().Should().OnlyContain(b => b == (byte)' ');
        (headerLength - end - 1).Should().BeLessThan(8, "only as much padding as the alignment needs");

        // Without padding a writer must not add any: tensors whose JSON happens to be 8-byte aligned.
        for (var nameLength = 1; nameLength <= 8; nameLength++)
        {
            using var buffer = new MemoryStream();
            Safetensors.Write(buffer, [new Safetensors.RawTensor(new string('a', nameLength), "U8", [1], [7])], new Dictionary<string, string>());
            var written = buffer.ToArray();
            var length = (int)BinaryPrimitives.ReadUInt64LittleEndian(written);
            var json = Encoding.UTF8.GetString(written, 8, length).TrimEnd(' ');
            (length % 8).Should().Be(0);
            (length - json.Length).Should().BeInRange(0, 7);
            written.Length.Should().Be(8 + length + 1);
            written[^1].Should().Be(7);
        }
    }

    [Fact]
    public void Tensors_listed_in_another_order_than_their_data_still_load()
    {
        // The JSON order carries no meaning (PyTorch's writer sorts names); the checksums follow the data order.
        var bytes = Model.Value;
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var root = JsonNode.Parse(bytes.AsSpan(8, headerLength))!.AsObject();
        var reordered = new JsonObject { ["__metadata__"] = root["__metadata__"]!.DeepClone() };
        foreach (var (name, value) in root.Where(p => p.Key != "__metadata__").Reverse().ToList())
        {
            reordered[name] = value!.DeepClone();
        }

        var json = Encoding.UTF8.GetBytes(reordered.ToJsonString());
        var padded = json.Concat(Enumerable.Repeat((byte)' ', (8 - json.Length % 8) % 8)).ToArray();
        var file = BitConverter.GetBytes((ulong)padded.Length).Concat(padded).Concat(bytes.Skip(8 + headerLength)).ToArray();

        var read = Read(file).Snapshot;

        read.Parameters.Select(p => p.Values).Should().BeEquivalentTo(Read(bytes).Snapshot.Parameters.Select(p => p.Values), o => o.WithStrictOrdering());
    }

    [Fact]
    public void The_writer_refuses_parameters_that_do_not_fit_the_architecture_and_reserved_metadata()
    {
        var snapshot = Read(Model.Value).Snapshot;
        var parameters = snapshot.Parameters.ToList();
        void Refused(List<(string, long[], float[])> edited)
            => FluentActions.Invoking(() => VaeModelFormat.Write(new MemoryStream(), snapshot with { Parameters = edited }))
                .Should().Throw<InvalidOperationException>().WithMessage("The network's parameters do not match its architecture; nothing was written.");

        Refused(parameters.Take(9).ToList());
        Refused(parameters.Select((p, i) => i == 1 ? ("fc1.b", p.Shape, p.Values) : p).ToList());
        Refused(parameters.Select((p, i) => i == 1 ? (p.Name, new long[] { 4, 2 }, p.Values) : p).ToList());
        Refused(parameters.Select((p, i) => i == 1 ? (p.Name, p.Shape, p.Values[1..]) : p).ToList());

        var extras = new VaeFileExtras(new Dictionary<string, string> { ["__metadata__"] = "x" }, []);
        FluentActions.Invoking(() => VaeModelFormat.Write(new MemoryStream(), snapshot, extras))
            .Should().Throw<ArgumentException>().WithMessage("Extra metadata '__metadata__' would replace one of the format's own entries.*");
        foreach (var key in VaeModelFormat.Keys.All)
        {
            FluentActions.Invoking(() => VaeModelFormat.Write(new MemoryStream(), snapshot, new VaeFileExtras(new Dictionary<string, string> { [key] = "x" }, [])))
                .Should().Throw<ArgumentException>(key);
        }

        VaeModelFormat.Keys.All.Should().BeEquivalentTo(
            "format", "vae_ml_format_version", "library", "architecture", "image_shape", "input_size", "hidden_sizes", "latent_dimension", "beta",
            "likelihood", "feature_column", "latent_column", "latent_log_variance_column", "reconstruction_column", "score_column", "history",
            "tensors_sha256", "header_sha256");
    }

    [Fact]
    public void The_safetensors_writer_refuses_what_its_reader_would()
    {
        void Refused(Safetensors.RawTensor tensor, string message)
            => FluentActions.Invoking(() => Safetensors.Write(new MemoryStream(), [new Safetensors.RawTensor("ok", "U8", [1], [1]), tensor], new Dictionary<string, string>()))
                .Should().Throw<ArgumentException>().WithMessage(message);

        Refused(new("", "U8", [1], [1]), "Tensor name '' is empty, repeated or reserved.*");
        Refused(new("ok", "U8", [1], [1]), "Tensor name 'ok' is empty, repeated or reserved.*");
        Refused(new("__metadata__", "U8", [1], [1]), "Tensor name '__metadata__' is empty, repeated or reserved.*");
        Refused(new("t", "F33", [1], [1]), "Tensor 't' (F33 [1]) does not hold 1 bytes.*");
        Refused(new("t", "U8", [-1], []), "Tensor 't' (U8 [-1]) does not hold 0 bytes.*");
        Refused(new("t", "F32", [2], new byte[7]), "Tensor 't' (F32 [2]) does not hold 7 bytes.*");
        Refused(new("t", "I64", [], new byte[4]), "Tensor 't' (I64 []) does not hold 4 bytes.*");

        // Every dtype of the format, a scalar and an empty tensor are written and read back.
        var sizes = new Dictionary<string, int>
        {
            ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1,
            ["U64"] = 8, ["U32"] = 4, ["U16"] = 2, ["U8"] = 1, ["BOOL"] = 1, ["F8_E5M2"] = 1, ["F8_E4M3"] = 1,
        };
        var tensors = sizes.Select(s => new Safetensors.RawTensor("t" + s.Key, s.Key, [3], Enumerable.Range(1, 3 * s.Value).Select(i => (byte)i).ToArray()))
            .Append(new Safetensors.RawTensor("scalar", "I64", [], new byte[8]))
            .Append(new Safetensors.RawTensor("empty", "F32", [0, 5], []))
            .ToList();
        using var buffer = new MemoryStream();
        Safetensors.Write(buffer, tensors, new Dictionary<string, string> { ["k"] = "v" });
        var bytes = buffer.ToArray();
        var contents = Safetensors.Read(new MemoryStream(bytes), bytes.Length, "all", _ => { });
        contents.Header.Metadata.Should().Equal(new Dictionary<string, string> { ["k"] = "v" });
        foreach (var tensor in tensors)
        {
            contents.Data[tensor.Name].Should().Equal(tensor.Data, tensor.Name);
            contents.Header.Entries.Single(e => e.Name == tensor.Name).Should().Match<Safetensors.Entry>(e => e.DType == tensor.DType && e.Shape.SequenceEqual(tensor.Shape));
        }
    }

    [Fact]
    public void Floats_convert_exactly_from_each_floating_point_dtype()
    {
        float[] Convert(string dtype, params byte[] data) => new Safetensors.RawTensor("t", dtype, [data.Length / Size(dtype)], data).ToFloat32();
        static int Size(string dtype) => dtype switch { "F64" => 8, "F32" => 4, _ => 2 };

        Convert("F32", 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0).Should().Equal(1f, -2f);
        Convert("F64", 0, 0, 0, 0, 0, 0, 0xE0, 0x3F, 0, 0, 0, 0, 0, 0, 0x08, 0x40).Should().Equal(0.5f, 3f);
        Convert("F16", 0x00, 0x3C, 0x00, 0xC2, 0x00, 0x7C).Should().Equal(1f, -3f, float.PositiveInfinity);
        Convert("BF16", 0x80, 0x3F, 0x40, 0xC0, 0xC0, 0x7F).Should().Equal(1f, -3f, float.NaN);
        FluentActions.Invoking(() => new Safetensors.RawTensor("t", "I32", [1], [1, 0, 0, 0]).ToFloat32())
            .Should().Throw<ArgumentException>().WithMessage("Tensor 't' has dtype I32, not a floating-point type.*");
        new[] { "F32", "F64", "F16", "BF16" }.Should().OnlyContain(d => Safetensors.IsFloatingPoint(d));
        new[] { "I32", "U8", "F8_E5M2", "BOOL", "f32" }.Should().NotContain(d => Safetensors.IsFloatingPoint(d));
    }

    public static TheoryData<string, string> HostileHeaders => new()
    {
        { """{"__metadata__":[]}""", "'__metadata__' is not an object" },
        { """{"__metadata__":{"a":"1","a":"2"}}""", "metadata 'a' appears twice" },
        { """{"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", "a tensor has an empty name" },
        { """{"t":5}""", "tensor 't' is not described by an object" },
        { """{"t":{"shape":[1],"data_offsets":[0,1]}}""", "tensor 't' needs dtype, shape and data_offsets" },
        { """{"t":{"dtype":"U8","data_offsets":[0,1]}}""", "tensor 't' needs dtype, shape and data_offsets" },
        { """{"t":{"dtype":"U8","shape":[1]}}""", "tensor 't' needs dtype, shape and data_offsets" },
        { """{"t":{"dtype":1,"shape":[1],"data_offsets":[0,1]}}""", "tensor 't' has an unexpected or repeated field 'dtype'" },
        { """{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", "tensor 't' has an unexpected or repeated field 'dtype'" },
        { """{"t":{"dtype":"U8","shape":[1],"shape":[1],"data_offsets":[0,1]}}""", "tensor 't' has an unexpected or repeated field 'shape'" },
        { """{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"data_offsets":[0,1]}}""", "tensor 't' has an unexpected or repeated field 'data_offsets'" },
        { """{"t":{"dtype":"U8","shape":1,"data_offsets":[0,1]}}""", "the shape of tensor 't' is not an array" },
        { """{"t":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}""", "the shape of tensor 't' holds '1.5', not a non-negative integer" },
        { """{"t":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}}""", "the shape of tensor 't' holds '1', not a non-negative integer" },
        { """{"t":{"dtype":"U8","shape":[1],"data_offsets":[0]}}""", "tensor 't' has data offsets [0], outside the 1 bytes of data" },
        { """{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}""", "tensor 't' has data offsets [0, 1, 1], outside the 1 bytes of data" },
        { """{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,2]}}""", "tensor 't' has data offsets [0, 2], outside the 1 bytes of data" },
        { """{"t":{"dtype":"U8","shape":[1],"data_offsets":{"a":0}}}""", "the data offsets of tensor 't' is not an array" },
        { """{"t":{"dtype":"U8","shape":[1],"data_offsets":[-1,1]}}""", "the data offsets of tensor 't' holds '-1', not a non-negative integer" },
        { """{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"t":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}}""", "the header names 't' twice" },
    };

    [Theory]
    [MemberData(nameof(HostileHeaders))]
    public void Hostile_safetensors_headers_are_refused_with_the_rule_they_break(string header, string why)
    {
        var file = SafetensorsFile(Encoding.UTF8.GetBytes(header), data: [9]);

        FluentActions.Invoking(() => Safetensors.Read(new MemoryStream(file), file.Length, "h", _ => { }))
            .Should().Throw<InvalidDataException>().WithMessage($"h is not a valid safetensors file: {why}.");
    }

    [Fact]
    public void Header_lengths_and_text_the_format_cannot_hold_are_refused()
    {
        void Refused(byte[] file, long? length, string message)
            => FluentActions.Invoking(() => Safetensors.Read(new MemoryStream(file), length, "h", _ => { }))
                .Should().Throw<InvalidDataException>().WithMessage(message);

        byte[] one = [1, 0, 0, 0, 0, 0, 0, 0, (byte)'{'];
        Refused(one, one.Length, "h is not a valid safetensors file: its header claims 1 bytes; the file has 9 bytes and headers are capped at 100000000.");
        Refused(one, null, "h is not a valid safetensors file: its header claims 1 bytes; and headers are capped at 100000000.");
        Refused(new byte[7], 7, "h is not a safetensors file: it has 7 bytes, fewer than the 8-byte header length.");
        FluentActions.Invoking(() => Safetensors.ReadHeader(new MemoryStream(new byte[7]), 7, "h"))
            .Should().Throw<InvalidDataException>().WithMessage("h is not a safetensors file: it has 7 bytes, fewer than the 8-byte header length.");

        // A name that is not valid UTF-8 passes the JSON parser's structure check and fails when read.
        var badUtf8 = Encoding.UTF8.GetBytes("""{"t?":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""");
        badUtf8[Array.IndexOf(badUtf8, (byte)'?')] = 0xFF;
        var bad = SafetensorsFile(badUtf8, data: [1]);
        Refused(bad, bad.Length, "h is not a valid safetensors file: its header holds a string that is not valid Unicode (*).");

        // The smallest valid header, "{}" with no tensors, and one whose length is exactly what the file holds.
        var empty = SafetensorsFile("{}"u8.ToArray(), data: []);
        Safetensors.Read(new MemoryStream(empty), empty.Length, "h", _ => { }).Header.Entries.Should().BeEmpty();
        Safetensors.Read(new MemoryStream(empty), null, "h", _ => { }).Data.Should().BeEmpty();
    }

    [Fact]
    public void A_stream_of_unknown_length_is_read_up_to_the_end_of_the_last_tensor()
    {
        var file = SafetensorsFile(Encoding.UTF8.GetBytes("""{"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"""), data: [5, 6, 7, 8, 9]);
        var stream = new MemoryStream(file);

        var contents = Safetensors.Read(stream, null, "s", _ => { });

        contents.Data["a"].Should().Equal(5);
        contents.Data["b"].Should().Equal(6, 7);
        stream.Position.Should().Be(file.Length - 2, "the two bytes after the tensors are not the file's");
        contents.DataSha256.Should().Be(Convert.ToHexString(SHA256.HashData(new byte[] { 5, 6, 7 })).ToLowerInvariant());
    }

    public static TheoryData<string, string?, string> CorruptMetadata => new()
    {
        { "vae_ml_format_version", "1", "m is corrupt: 'vae_ml_format_version' is '1'." },
        { "vae_ml_format_version", "x", "m is corrupt: 'vae_ml_format_version' is 'x'." },
        { "vae_ml_format_version", "+4", "m is corrupt: 'vae_ml_format_version' is '+4'." },
        { "header_sha256", null, "m is corrupt: its header does not match its header_sha256." },
        { "tensors_sha256", null, "m is corrupt: its metadata has no tensors_sha256." },
        { "likelihood", null, "m is corrupt: its metadata lacks 'likelihood'." },
        { "likelihood", "Gaussian", "m is corrupt: 'likelihood' is 'Gaussian', not \"bernoulli\" or \"gaussian\"." },
        { "architecture", null, "m is corrupt: its metadata lacks 'architecture'." },
        { "architecture", "MLP", "m is corrupt: 'architecture' is 'MLP', not one of mlp, convolutional." },
        { "input_size", "+64", "m is corrupt: 'input_size' is '+64', not a whole number." },
        { "input_size", " 64", "m is corrupt: 'input_size' is ' 64', not a whole number." },
        { "hidden_sizes", "8,", "m is corrupt: 'hidden_sizes' is '', not a whole number." },
        { "latent_dimension", "0", "m is corrupt: LatentDimension must be at least 1*" },
        { "image_shape", "1,8,x", "m is corrupt: 'image_shape' is 'x', not a whole number." },
        { "beta", "-1", "m is corrupt: beta '-1' is not a finite number ≥ 0." },
        { "beta", "NaN", "m is corrupt: beta 'NaN' is not a finite number ≥ 0." },
        { "beta", "Infinity", "m is corrupt: beta 'Infinity' is not a finite number ≥ 0." },
        { "beta", "1e400", "m is corrupt: beta '1e400' is not a finite number ≥ 0." },
        { "beta", "0.5x", "m is corrupt: beta '0.5x' is not a finite number ≥ 0." },
        { "score_column", null, "m is corrupt: its metadata lacks 'score_column'." },
        { "history", "{", "m is corrupt: its training history cannot be read (*)." },
        { "history", "null", "m is corrupt: its training history is not a list of epochs." },
    };

    [Theory]
    [MemberData(nameof(CorruptMetadata))]
    public void Each_metadata_value_outside_its_domain_is_refused(string key, string? value, string message)
    {
        var bytes = Forgery.Resealed(Model.Value, m =>
        {
            if (value is null)
            {
                m.Remove(key);
            }
            else
            {
                m[key] = value;
            }
        });

        ShouldBeRefused(bytes, message);
    }

    [Fact]
    public void A_history_with_one_missing_epoch_among_real_ones_is_refused()
    {
        // Two real epochs and a null between them: "any epoch missing" must refuse it, not only "every epoch missing".
        var bytes = Forgery.Resealed(Model.Value, m =>
        {
            var epochs = System.Text.Json.Nodes.JsonNode.Parse(m["history"])!.AsArray();
            epochs.Count.Should().Be(2, "the fixture trains two epochs");
            epochs.Insert(1, null);
            m["history"] = epochs.ToJsonString();
        });

        ShouldBeRefused(bytes, "m is corrupt: its training history is not a list of epochs.");
    }

    [Fact]
    public void Importing_a_Vae_ML_file_as_safetensors_checks_its_header_checksum()
    {
        // The file as saved, with only its header_sha256 replaced (the tensors' checksum still holds).
        var file = Model.Value;
        var header = Safetensors.ReadHeader(new MemoryStream(file), file.Length, "test");
        var metadata = header.Metadata.ToDictionary(m => m.Key, m => m.Value);
        metadata[VaeModelFormat.Keys.HeaderSha256] = new string('0', 64);
        var tensors = header.Entries.OrderBy(e => e.Begin)
            .Select(e => new Safetensors.RawTensor(e.Name, e.DType, e.Shape, file[(int)(header.DataStart + e.Begin)..(int)(header.DataStart + e.End)]))
            .ToList();
        using var buffer = new MemoryStream();
        Safetensors.Write(buffer, tensors, metadata);
        var bytes = buffer.ToArray();

        FluentActions.Invoking(() => VaeModelFormat.Import(new MemoryStream(bytes), "m", bytes.Length, SmallOptions([8])))
            .Should().Throw<InvalidDataException>().WithMessage("m is corrupt: its header does not match its header_sha256.");
    }

    [Fact]
    public void A_safetensors_header_that_is_json_but_not_an_object_is_refused_by_its_first_byte()
    {
        // The smallest header there is: 8 bytes of length (2, little-endian), then "[]", valid JSON but an array.
        byte[] bytes = [2, 0, 0, 0, 0, 0, 0, 0, (byte)'[', (byte)']'];
        FluentActions.Invoking(() => Safetensors.ReadHeader(new MemoryStream(bytes), bytes.Length, "t.safetensors"))
            .Should().Throw<InvalidDataException>().WithMessage("t.safetensors is not a valid safetensors file: its header does not start with '{'.");
    }

    [Fact]
    public void Older_format_versions_ignore_the_entries_they_predate()
    {
        var original = Read(Model.Value);

        // Version 3 predates the likelihood: a stray value is not read, and the model is Bernoulli.
        var v3 = Read(Forgery.Resealed(Model.Value, m => (m["vae_ml_format_version"], m["likelihood"]) = ("3", "poisson")));
        v3.FormatVersion.Should().Be(3);
        v3.Snapshot.Architecture.Should().Be(original.Snapshot.Architecture);

        // Version 2 predates the architecture and the image shape: it is an MLP whatever they say.
        var v2 = Read(Forgery.Resealed(Model.Value, m =>
        {
            m.Remove("likelihood");
            (m["vae_ml_format_version"], m["architecture"], m["image_shape"]) = ("2", "convolutional", "1,8,8");
        }));
        v2.FormatVersion.Should().Be(2);
        v2.Snapshot.Architecture.Should().Be(original.Snapshot.Architecture);
        v2.Snapshot.Architecture.ImageShape.Should().BeNull();

        // Version 4 reads them all: an MLP may carry an image shape.
        var shaped = Read(Forgery.Resealed(Model.Value, m => m["image_shape"] = "1,8,8"));
        shaped.Snapshot.Architecture.ImageShape.Should().Equal(1, 8, 8);
        ShouldBeRefused(Forgery.Resealed(Model.Value, m => m["image_shape"] = "1,8,9"), "m is corrupt: ImageShape [1, 8, 9] holds 72 values per row*");

        // β 0 is in the domain; the format version is read as written.
        Read(Forgery.Resealed(Model.Value, m => m["beta"] = "0")).Snapshot.Beta.Should().Be(0);
        original.FormatVersion.Should().Be(4);
        original.Snapshot.Beta.Should().Be(0.75);
    }

    [Fact]
    public void Tensors_that_do_not_match_the_architecture_are_named()
    {
        ShouldBeRefused(Forgery.Resealed(Model.Value, _ => { }, t => t.Name == "fc1.bias" ? t with { DType = "F16", Data = t.Data[..16] } : t),
            "m is corrupt: tensor 'fc1.bias' is F16 [8]; its architecture needs F32 [8].");
        ShouldBeRefused(Forgery.Resealed(Model.Value, _ => { }, t => t.Name == "fc4.bias" ? t with { Name = "fc5.bias" } : t),
            "m is corrupt: its tensors do not match its architecture 64-8-3: missing [fc4.bias], unexpected [fc5.bias].");
        ShouldBeRefused(Forgery.Resealed(Model.Value, _ => { }, t => t.Name == "fc4.bias" ? null : t),
            "m is corrupt: its tensors do not match its architecture 64-8-3: missing [fc4.bias], unexpected [].");
        ShouldBeRefused(Forgery.Resealed(Model.Value, _ => { }, t => t.Name == "fc4.bias" ? t with { Name = "optimizer.x" } : t),
            "m is corrupt: its tensors do not match its architecture 64-8-3: missing [fc4.bias], unexpected [optimizer.x].");
    }

    [Fact]
    public void A_model_in_a_stream_may_be_followed_by_other_bytes_but_a_file_may_not()
    {
        var bytes = Model.Value;
        var stream = new MemoryStream([.. bytes, 1, 2, 3]);

        VaeModelFormat.Read(stream, "s", length: null).Snapshot.Parameters.Should().HaveCount(10);

        stream.Position.Should().Be(bytes.Length);
        FluentActions.Invoking(() => VaeModelFormat.Read(new MemoryStream([.. bytes, 1]), "f", bytes.Length + 1))
            .Should().Throw<InvalidDataException>().WithMessage("f is not a valid safetensors file: the tensors cover * bytes of data but the file holds *");
    }

    [Fact]
    public void A_legacy_file_in_a_stream_is_left_just_after_its_checksum()
    {
        var bytes = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Persistence", "TestData", "legacy-v1-16-8-2.vae"));
        var stream = new MemoryStream([.. bytes, 42]);

        var file = VaeModelFormat.Read(stream, "old", length: null);

        file.FormatVersion.Should().Be(1);
        file.Metadata.Should().BeEmpty();
        file.Tensors.Should().BeEmpty();
        stream.Position.Should().Be(bytes.Length);
        stream.ReadByte().Should().Be(42);
    }

    [Fact]
    public void Each_field_of_a_legacy_header_is_checked()
    {
        var original = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Persistence", "TestData", "legacy-v1-16-8-2.vae"));
        var headerLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(original.AsSpan(12));
        var header = JsonNode.Parse(original.AsSpan(16, headerLength))!.AsObject();
        var tensorBytes = original[(16 + headerLength)..^32];

        // docs/persistence.md: magic, uint32 version, uint32 header length, JSON header, float32 tensors, SHA-256 of all before.
        byte[] Legacy(Action<JsonObject> edit, uint version = 1)
        {
            var json = (JsonObject)header.DeepClone();
            edit(json);
            var text = Encoding.UTF8.GetBytes(json.ToJsonString());
            var body = original[..8].Concat(BitConverter.GetBytes(version)).Concat(BitConverter.GetBytes((uint)text.Length)).Concat(text).Concat(tensorBytes).ToArray();
            return [.. body, .. SHA256.HashData(body)];
        }

        void Refused(byte[] file, string message)
            => FluentActions.Invoking(() => VaeModelFormat.Read(new MemoryStream(file), "old", file.Length)).Should().Throw<InvalidDataException>().WithMessage(message);

        VaeModelFormat.Read(new MemoryStream(Legacy(_ => { })), "old", null).Snapshot.Parameters.Should().HaveCount(10, "the rebuilt file is valid");
        Refused(Legacy(_ => { }, version: 0), "old is corrupt: it has the signature of a Vae.ML binary model file (format version 1) but claims version 0.");
        Refused(Legacy(_ => { }, version: 2), "old is corrupt: it has the signature of a Vae.ML binary model file (format version 1) but claims version 2.");
        Refused(Legacy(j => j.Remove("columns")), "old is corrupt: its JSON header lacks required entries.");
        Refused(Legacy(j => j.Remove("hiddenSizes")), "old is corrupt: its JSON header lacks required entries.");
        Refused(Legacy(j => j.Remove("history")), "old is corrupt: its JSON header lacks required entries.");
        Refused(Legacy(j => j.Remove("tensors")), "old is corrupt: its JSON header lacks required entries.");
        Refused(Legacy(j => j["history"]!.AsArray().Add(null)), "old is corrupt: its JSON header lacks required entries.");
        Refused(Legacy(j => j["tensors"]!.AsArray()[0]!.AsObject().Remove("name")), "old is corrupt: its JSON header lacks required entries.");
        Refused(Legacy(j => j["tensors"]!.AsArray()[0]!.AsObject().Remove("shape")), "old is corrupt: its JSON header lacks required entries.");
        Refused(Legacy(j => j["tensors"]!.AsArray()[0] = null), "old is corrupt: its JSON header lacks required entries.");
        Refused(Legacy(j => j["latentDimension"] = 0), "old is corrupt: LatentDimension must be at least 1*");
        Refused(Legacy(j => j["beta"] = -0.5), "old is corrupt: beta -0.5 is not a finite number ≥ 0.");
        Refused(Legacy(j => j["beta"] = "NaN"), "old is corrupt: beta * is not a finite number ≥ 0.");
        Refused(Legacy(j => j["beta"] = "Infinity"), "old is corrupt: beta * is not a finite number ≥ 0.");
        Refused(Legacy(j => j["columns"]!["latent"] = j["columns"]!["feature"]!.GetValue<string>()), "old is corrupt: LatentColumnName * collides with FeatureColumnName*");
        Refused(Legacy(j => j["tensors"]!.AsArray().RemoveAt(9)), "old is corrupt: its tensors [*] do not match its architecture, which needs [*].");
        Refused(Legacy(j => j["tensors"]!.AsArray()[9]!["name"] = "fc5.bias"), "old is corrupt: its tensors [*fc5.bias [16]] do not match its architecture*");
        Refused(Legacy(j => j["tensors"]!.AsArray()[9]!["shape"] = new JsonArray(4, 4)), "old is corrupt: its tensors [*fc4.bias [4, 4]] do not match its architecture*");
        Refused(Legacy(j => j["library"] = 5), "old is corrupt: its JSON header cannot be read (*).");
        Read(Legacy(j => j["beta"] = 0)).Snapshot.Beta.Should().Be(0);

        // The header length: 0 and more than 16 MiB are refused before anything is read.
        var zero = (byte[])original.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(zero.AsSpan(12), 0);
        Refused(zero, "old is corrupt: its header claims 0 bytes (at most 16777216 expected).");
        var huge = (byte[])original.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(huge.AsSpan(12), (16 << 20) + 1);
        Refused(huge, "old is corrupt: its header claims 16777217 bytes (at most 16777216 expected).");
        var largest = (byte[])original.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(largest.AsSpan(12), 16 << 20);
        Refused(largest, "old is truncated: it ends after * bytes, in the middle of the JSON header (* more bytes expected).");

        // A truncated file names the part it ends in.
        Refused(original[..10], "old is truncated: it ends after 10 bytes, in the middle of the format version (2 more bytes expected).");
        Refused(original[..14], "old is truncated: it ends after 14 bytes, in the middle of the header length (2 more bytes expected).");
        Refused(original[..(16 + headerLength + 4)], "old is truncated: it ends after * bytes, in the middle of tensor 'fc1.weight' (* more bytes expected).");
        Refused(original[..^10], "old is truncated: it ends after * bytes, in the middle of the SHA-256 checksum (10 more bytes expected).");
    }

    [Fact]
    public void ImportSafetensors_takes_the_likelihood_from_the_options_with_or_without_an_image_shape()
    {
        var ml = new MLContext(seed: 0);
        var options = ManifoldData.Options(epochs: 1);
        using var trained = ml.Transforms.Vae(options).Fit(ManifoldData.Load(ml, ManifoldData.Rows(64, seed: 1)));
        using var scratch = new ScratchDirectory();
        var path = scratch.File("g.safetensors");
        trained.ExportSafetensors(path);
        var probe = ManifoldData.Matrix(ManifoldData.Rows(5, seed: 2));

        foreach (var imageShape in new[] { null, new[] { 1, 4, 5 } })
        {
            var import = ManifoldData.Options(epochs: 1);
            import.ImageShape = imageShape;
            using var imported = VaeTransformer.ImportSafetensors(ml, path, import);

            imported.Likelihood.Should().Be(VaeLikelihood.Gaussian);
            imported.Standardization!.Value.Mean.Should().Equal(trained.Standardization!.Value.Mean);
            ShouldBeBitwiseEqual(Outputs(imported, probe), Outputs(trained, probe));
        }
    }

    [Fact]
    public void ImportSafetensors_refuses_weights_and_options_that_cannot_form_the_VAE()
    {
        var ml = new MLContext(seed: 0);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("m.safetensors");
        File.WriteAllBytes(path, Model.Value);
        void Refused(Action<VaeOptions> edit, string message)
        {
            var options = SmallOptions([8]);
            edit(options);
            FluentActions.Invoking(() => VaeTransformer.ImportSafetensors(ml, path, options)).Should().Throw<Exception>().WithMessage(message);
        }

        Refused(o => o.ImageShape = [1, 8, 9], "*tensor 'fc1.weight' has shape [8, 64]; the VAE 72-8-3 of the options needs [8, 72].");
        Refused(o => o.Beta = -1, "Beta must be a finite number ≥ 0.*");
        Refused(o => o.Beta = double.NaN, "Beta must be a finite number ≥ 0.*");
        Refused(o => o.Beta = double.PositiveInfinity, "Beta must be a finite number ≥ 0.*");
        Refused(o => o.Device = "tpu", "*tpu*");
        Refused(o => o.ScoreColumnName = o.FeatureColumnName, "*collides*");

        var oneDimensional = Forgery.Resealed(Model.Value, _ => { }, t => t.Name == "fc1.weight" ? t with { Shape = [512] } : t);
        File.WriteAllBytes(path, oneDimensional);
        Refused(_ => { }, "*needs a 2-D tensor 'fc1.weight' [hidden, input size]; it has [fc1.weight [512], *");
        var noInputs = Forgery.Resealed(Model.Value, _ => { }, t => t.Name == "fc1.weight" ? t with { Shape = [8, 0], Data = [] } : t);
        File.WriteAllBytes(path, noInputs);
        Refused(_ => { }, "*needs a 2-D tensor 'fc1.weight' [hidden, input size]*");

        // β 0 is allowed; the imported transformer takes its β and columns from the options.
        File.WriteAllBytes(path, Model.Value);
        var zero = SmallOptions([8]);
        zero.Beta = 0;
        zero.ScoreColumnName = "S";
        using var imported = VaeTransformer.ImportSafetensors(ml, path, zero);
        imported.Beta.Should().Be(0);
        imported.Columns.Score.Should().Be("S");
        imported.History.Should().BeEmpty();
    }

    [Fact]
    public void Loading_a_damaged_file_names_its_full_path()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File("damaged.safetensors");
        File.WriteAllBytes(path, Model.Value[..100]);

        FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path, "cpu")).Should().Throw<InvalidDataException>()
            .WithMessage($"'{Path.GetFullPath(path)}' is *");
        FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), new MemoryStream(Model.Value[..100]))).Should().Throw<InvalidDataException>()
            .WithMessage("The Vae.ML model stream is *");
    }

    [Fact]
    public void The_public_entry_points_refuse_missing_arguments_by_name()
    {
        var ml = new MLContext(seed: 0);
        using var vae = VaeTransformer.Load(ml, new MemoryStream(Model.Value), "cpu");
        void Null(Action act, string parameter) => act.Should().Throw<ArgumentException>().Which.ParamName.Should().Be(parameter);

        Null(() => vae.Save((Stream)null!), "stream");
        Null(() => VaeTransformer.Load(null!, new MemoryStream(Model.Value)), "mlContext");
        Null(() => VaeTransformer.Load(ml, (Stream)null!), "stream");
        Null(() => VaeTransformer.Load(null!, "m.safetensors"), "mlContext");
        Null(() => VaeTransformer.Load(ml, (string)null!), "path");
        Null(() => VaeTransformer.Load(ml, " "), "path");
        Null(() => VaeTransformer.ImportSafetensors(null!, "m.safetensors", SmallOptions()), "mlContext");
        Null(() => VaeTransformer.ImportSafetensors(ml, " ", SmallOptions()), "path");
        Null(() => VaeTransformer.ImportSafetensors(ml, "m.safetensors", null!), "options");
        // The device name is checked before anything is read: an unreadable source does not hide it.
        FluentActions.Invoking(() => VaeTransformer.Load(ml, new MemoryStream(), "tpu")).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*tpu*");
        FluentActions.Invoking(() => VaeTransformer.Load(ml, "missing.safetensors", "tpu")).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*tpu*");
        var tpu = SmallOptions();
        tpu.Device = "tpu";
        FluentActions.Invoking(() => VaeTransformer.ImportSafetensors(ml, "missing.safetensors", tpu)).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*tpu*");

        var stream = new MemoryStream();
        vae.Save(stream);
        stream.ToArray().Should().Equal(Model.Value, "Save(stream) writes the same bytes as the model it was loaded from");
    }

    /// <summary>A safetensors file around a given JSON header (padded to 8 bytes) and data.</summary>
    private static byte[] SafetensorsFile(byte[] json, byte[] data)
    {
        var padded = json.Concat(Enumerable.Repeat((byte)' ', (8 - json.Length % 8) % 8)).ToArray();
        return [.. BitConverter.GetBytes((ulong)padded.Length), .. padded, .. data];
    }
}
