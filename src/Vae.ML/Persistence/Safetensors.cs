using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Vae.ML.Persistence;

/// <summary>
/// The safetensors format (https://github.com/huggingface/safetensors, written here from its description):
/// an 8-byte little-endian header length N, N bytes of UTF-8 JSON <c>{"__metadata__": {string: string},
/// name: {"dtype", "shape", "data_offsets": [begin, end]}}</c> padded with spaces, then the raw little-endian data, the
/// offsets counting from its start. Reading is strict: a file that is not exactly that is rejected before any tensor
/// memory is allocated, and no tensor can claim more bytes than the file holds.
/// </summary>
internal static class Safetensors
{
    public const string MetadataKey = "__metadata__";

    /// <summary>The reference implementation's own cap on the header size.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, int> ElementSizes = new(StringComparer.Ordinal)
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2,
        ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U64"] = 8, ["U32"] = 4, ["U16"] = 2, ["U8"] = 1, ["BOOL"] = 1,
        ["F8_E5M2"] = 1, ["F8_E4M3"] = 1,
    };

    /// <summary>One tensor's entry in the header.</summary>
    public sealed record Entry(string Name, string DType, long[] Shape, long Begin, long End);

    /// <summary>A validated header: where each tensor lies, and the metadata.</summary>
    public sealed record Header(IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<Entry> Entries, long DataStart);

    /// <summary>One tensor to write: its raw little-endian bytes under a safetensors dtype.</summary>
    public sealed record RawTensor(string Name, string DType, long[] Shape, byte[] Data)
    {
        /// <summary>A float32 tensor; the values are copied as little-endian bytes.</summary>
        public static RawTensor Float32(string name, long[] shape, float[] values) => new(name, "F32", shape, FloatBytes(values));

        /// <summary>The values as float32 (F64, F16 and BF16 converted); an integer dtype is an <see cref="ArgumentException"/>.</summary>
        public float[] ToFloat32() => Safetensors.ToFloat32(new Entry(Name, DType, Shape, 0, Data.Length), Data);
    }

    /// <summary>Writes float32 tensors, in the given order, with string metadata.</summary>
    public static void Write(Stream stream, IReadOnlyList<(string Name, long[] Shape, float[] Values)> tensors, IReadOnlyDictionary<string, string> metadata)
        => Write(stream, tensors.Select(t => RawTensor.Float32(t.Name, t.Shape, t.Values)).ToList(), metadata);

    /// <summary>
    /// Writes tensors of any dtype, in the given order, with string metadata. Everything is checked before the first
    /// byte is written, so the writer never produces a file its own reader rejects.
    /// </summary>
    public static void Write(Stream stream, IReadOnlyList<RawTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var names = new HashSet<string>(StringComparer.Ordinal) { MetadataKey };
        foreach (var tensor in tensors)
        {
            if (tensor.Name.Length == 0 || !names.Add(tensor.Name))
            {
                throw new ArgumentException($"Tensor name '{tensor.Name}' is empty, repeated or reserved.", nameof(tensors));
            }

            if (!ElementSizes.TryGetValue(tensor.DType, out var size) || tensor.Shape.Any(d => d < 0)
                || tensor.Shape.Aggregate((long)size, (a, b) => checked(a * b)) != tensor.Data.Length)
            {
                throw new ArgumentException(
                    $"Tensor '{tensor.Name}' ({tensor.DType} {TensorShape.Describe(tensor.Shape)}) does not hold {tensor.Data.Length} bytes.", nameof(tensors));
            }
        }

        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            writer.WriteStartObject(MetadataKey);
            foreach (var (key, value) in metadata)
            {
                writer.WriteString(key, value);
            }

            writer.WriteEndObject();
            long offset = 0;
            foreach (var tensor in tensors)
            {
                writer.WriteStartObject(tensor.Name);
                writer.WriteString("dtype", tensor.DType);
                writer.WriteStartArray("shape");
                foreach (var dimension in tensor.Shape)
                {
                    writer.WriteNumberValue(dimension);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                offset += tensor.Data.Length;
                writer.WriteNumberValue(offset);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        var padding = (int)((8 - json.Length % 8) % 8);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)(json.Length + padding));
        stream.Write(length);
        stream.Write(json.GetBuffer().AsSpan(0, (int)json.Length));
        for (var i = 0; i < padding; i++)
        {
            stream.WriteByte((byte)' ');
        }

        foreach (var tensor in tensors)
        {
            stream.Write(tensor.Data);
        }
    }

    /// <summary>SHA-256, as lowercase hex, of the tensors' bytes in file order: what <c>tensors_sha256</c> holds.</summary>
    public static string DataSha256(IEnumerable<RawTensor> tensors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var tensor in tensors)
        {
            hash.AppendData(tensor.Data);
        }

        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    /// <summary>Float32 values as little-endian bytes.</summary>
    public static byte[] FloatBytes(ReadOnlySpan<float> values)
    {
        var bytes = MemoryMarshal.AsBytes(values).ToArray();
        if (!BitConverter.IsLittleEndian)
        {
            var ints = MemoryMarshal.Cast<byte, int>(bytes.AsSpan());
            BinaryPrimitives.ReverseEndianness(ints, ints);
        }

        return bytes;
    }

    /// <summary>A whole file read in one sequential pass: its validated header, every tensor's bytes, and their SHA-256.</summary>
    public sealed record Contents(Header Header, IReadOnlyDictionary<string, byte[]> Data, string DataSha256);

    /// <summary>
    /// THE reader: reads a safetensors file front to back (no seeking, so ML.NET zip entries and other forward-only
    /// streams work). <paramref name="length"/> is the file's byte count when known (then nothing may follow the data),
    /// else null (then the stream is left just after the data). <paramref name="check"/> sees the validated header
    /// before any tensor memory is allocated and throws to refuse it; tensor arrays then grow with the bytes that
    /// actually arrive, so a file never makes the reader allocate much more than its own size.
    /// </summary>
    public static Contents Read(Stream stream, long? length, string source, Action<Header> check)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (length is < 8)
        {
            throw new InvalidDataException($"{source} is not a safetensors file: it has {length} bytes, fewer than the 8-byte header length.");
        }

        var reader = new ExactReader(stream, source);
        return ReadAfterLength(stream, reader.ReadUInt64("the header length"), length, source, check);
    }

    /// <summary><see cref="Read"/> for a caller that has already consumed the 8-byte header length (to tell formats apart).</summary>
    public static Contents ReadAfterLength(Stream stream, ulong headerLength, long? length, string source, Action<Header> check)
    {
        var header = ReadHeaderAfterLength(stream, headerLength, length, source);
        check(header);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var reader = new ExactReader(stream, source, hash, header.DataStart);
        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var entry in header.Entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            data.Add(entry.Name, reader.ReadBytes(entry.End - entry.Begin, $"tensor '{entry.Name}'"));
        }

        return new Contents(header, data, Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant());
    }

    /// <summary>A tensor's bytes as float32, converting F64, F16 and BF16.</summary>
    public static float[] ToFloat32(Entry entry, byte[] data)
    {
        var size = ElementSizes[entry.DType];
        var result = new float[data.Length / size];
        for (var i = 0; i < result.Length; i++)
        {
            var element = data.AsSpan(i * size, size);
            result[i] = entry.DType switch
            {
                "F32" => BinaryPrimitives.ReadSingleLittleEndian(element),
                "F64" => (float)BinaryPrimitives.ReadDoubleLittleEndian(element),
                "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(element),
                "BF16" => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(element) << 16),
                _ => throw new ArgumentException($"Tensor '{entry.Name}' has dtype {entry.DType}, not a floating-point type.", nameof(entry)),
            };
        }

        return result;
    }

    /// <summary>Reads and checks the header of a seekable stream of <paramref name="fileLength"/> bytes.</summary>
    public static Header ReadHeader(Stream stream, long fileLength, string source)
    {
        if (fileLength < 8)
        {
            throw new InvalidDataException($"{source} is not a safetensors file: it has {fileLength} bytes, fewer than the 8-byte header length.");
        }

        var length = new ExactReader(stream, source).ReadUInt64("the header length");
        return ReadHeaderAfterLength(stream, length, fileLength, source);
    }

    private static Header ReadHeaderAfterLength(Stream stream, ulong length, long? fileLength, string source)
    {
        if (length < 2 || length > MaxHeaderBytes || (fileLength is { } known && length > (ulong)(known - 8)))
        {
            throw new InvalidDataException(
                $"{source} is not a valid safetensors file: its header claims {length} bytes; " +
                (fileLength is { } n ? $"the file has {n} bytes " : string.Empty) + $"and headers are capped at {MaxHeaderBytes}.");
        }

        var headerBytes = new ExactReader(stream, source, bytesBefore: 8).ReadBytes((long)length, "the JSON header");
        if (headerBytes[0] != (byte)'{')
        {
            throw new InvalidDataException($"{source} is not a valid safetensors file: its header does not start with '{{'.");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerBytes, new JsonDocumentOptions { MaxDepth = 4 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source} is not a valid safetensors file: its header is not valid JSON ({e.Message}).", e);
        }

        using (document)
        {
            try
            {
                return ParseHeader(document.RootElement, fileLength - 8 - (long)length, 8 + (long)length, source);
            }
            catch (InvalidOperationException e)
            {
                // JsonDocument checks structure, not text: a name or string that is not valid UTF-8 (or an unpaired
                // surrogate escape) only fails when read.
                throw new InvalidDataException($"{source} is not a valid safetensors file: its header holds a string that is not valid Unicode ({e.Message}).", e);
            }
        }
    }

    /// <summary>Whether <see cref="ToFloat32"/> can convert the dtype.</summary>
    public static bool IsFloatingPoint(string dtype) => dtype is "F32" or "F64" or "F16" or "BF16";

    private static Header ParseHeader(JsonElement root, long? dataLength, long dataStart, string source)
    {
        // The header was refused before parsing unless its first byte is '{', so root is a JSON object here.
        InvalidDataException Bad(string why) => new($"{source} is not a valid safetensors file: {why}.");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (!names.Add(property.Name))
            {
                throw Bad($"the header names '{property.Name}' twice");
            }

            if (property.Name == MetadataKey)
            {
                if (property.Value.ValueKind != JsonValueKind.Object)
                {
                    throw Bad($"'{MetadataKey}' is not an object");
                }

                foreach (var item in property.Value.EnumerateObject())
                {
                    if (item.Value.ValueKind != JsonValueKind.String)
                    {
                        throw Bad($"metadata '{item.Name}' is not a string");
                    }

                    if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                    {
                        throw Bad($"metadata '{item.Name}' appears twice");
                    }
                }

                continue;
            }

            entries.Add(ParseEntry(property, dataLength, Bad));
        }

        // The tensors must tile the data exactly: no gaps, no overlaps, nothing left over.
        long expectedBegin = 0;
        foreach (var entry in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin != expectedBegin)
            {
                throw Bad(entry.Begin < expectedBegin
                    ? $"tensor '{entry.Name}' overlaps another one (it starts at byte {entry.Begin}, before byte {expectedBegin})"
                    : $"the data has a gap of unused bytes {expectedBegin}..{entry.Begin} before tensor '{entry.Name}'");
            }

            expectedBegin = entry.End;
        }

        if (dataLength is { } known && expectedBegin != known)
        {
            throw Bad($"the tensors cover {expectedBegin} bytes of data but the file holds {dataLength}");
        }

        return new Header(metadata, entries, dataStart);
    }

    private static Entry ParseEntry(JsonProperty property, long? dataLength, Func<string, InvalidDataException> bad)
    {
        var name = property.Name;
        if (name.Length == 0)
        {
            throw bad("a tensor has an empty name");
        }

        if (property.Value.ValueKind != JsonValueKind.Object)
        {
            throw bad($"tensor '{name}' is not described by an object");
        }

        string? dtype = null;
        long[]? shape = null;
        long[]? offsets = null;
        foreach (var field in property.Value.EnumerateObject())
        {
            switch (field.Name)
            {
                case "dtype" when dtype is null && field.Value.ValueKind == JsonValueKind.String:
                    dtype = field.Value.GetString()!;
                    break;
                case "shape" when shape is null:
                    shape = ReadIntegers(field.Value, $"the shape of tensor '{name}'", bad);
                    break;
                case "data_offsets" when offsets is null:
                    offsets = ReadIntegers(field.Value, $"the data offsets of tensor '{name}'", bad);
                    break;
                default:
                    throw bad($"tensor '{name}' has an unexpected or repeated field '{field.Name}'");
            }
        }

        if (dtype is null || shape is null || offsets is null)
        {
            throw bad($"tensor '{name}' needs dtype, shape and data_offsets");
        }

        if (!ElementSizes.TryGetValue(dtype, out var elementSize))
        {
            throw bad($"tensor '{name}' has the unknown dtype '{dtype}'");
        }

        if (offsets.Length != 2 || offsets[0] > offsets[1] || offsets[1] > (dataLength ?? long.MaxValue))
        {
            throw bad($"tensor '{name}' has data offsets [{string.Join(", ", offsets)}], " +
                (dataLength is { } n ? $"outside the {n} bytes of data" : "not [begin, end] with begin ≤ end"));
        }

        long bytes;
        try
        {
            bytes = shape.Aggregate((long)elementSize, (a, b) => checked(a * b));
        }
        catch (OverflowException)
        {
            throw bad($"the shape {TensorShape.Describe(shape)} of tensor '{name}' overflows");
        }

        if (bytes != offsets[1] - offsets[0])
        {
            throw bad(string.Create(CultureInfo.InvariantCulture,
                $"tensor '{name}' ({dtype} {TensorShape.Describe(shape)}) needs {bytes} bytes but its data offsets span {offsets[1] - offsets[0]}"));
        }

        return new Entry(name, dtype, shape, offsets[0], offsets[1]);
    }

    private static long[] ReadIntegers(JsonElement element, string what, Func<string, InvalidDataException> bad)
    {
        if (element.ValueKind != JsonValueKind.Array)
        {
            throw bad($"{what} is not an array");
        }

        var result = new long[element.GetArrayLength()];
        var i = 0;
        foreach (var item in element.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var value) || value < 0)
            {
                throw bad($"{what} holds '{item}', not a non-negative integer");
            }

            result[i++] = value;
        }

        return result;
    }
}
