using System.Buffers.Binary;
using System.Globalization;
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
    public sealed record Entry(string Name, string DType, long[] Shape, long Begin, long End)
    {
        public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>A validated header: where each tensor lies, and the metadata.</summary>
    public sealed record Header(IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<Entry> Entries, long DataStart);

    /// <summary>Writes float32 tensors, in the given order, with string metadata.</summary>
    public static void Write(Stream stream, IReadOnlyList<(string Name, long[] Shape, float[] Values)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
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
            foreach (var (name, shape, values) in tensors)
            {
                writer.WriteStartObject(name);
                writer.WriteString("dtype", "F32");
                writer.WriteStartArray("shape");
                foreach (var dimension in shape)
                {
                    writer.WriteNumberValue(dimension);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                offset += (long)values.Length * sizeof(float);
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

        foreach (var (_, _, values) in tensors)
        {
            VaeModelFile.WriteFloats(values, stream.Write);
        }
    }

    /// <summary>Reads and checks the header of a seekable stream of <paramref name="fileLength"/> bytes.</summary>
    public static Header ReadHeader(Stream stream, long fileLength, string source)
    {
        if (fileLength < 8)
        {
            throw new InvalidDataException($"{source} is not a safetensors file: it has {fileLength} bytes, fewer than the 8-byte header length.");
        }

        var reader = new ExactReader(stream, source);
        var length = reader.ReadUInt64("the header length");
        if (length < 2 || length > (ulong)MaxHeaderBytes || length > (ulong)(fileLength - 8))
        {
            throw new InvalidDataException(
                $"{source} is not a valid safetensors file: its header claims {length} bytes; the file has {fileLength} bytes " +
                $"and headers are capped at {MaxHeaderBytes}.");
        }

        var headerBytes = reader.ReadBytes((int)length, "the JSON header");
        if (headerBytes[0] != (byte)'{')
        {
            throw new InvalidDataException($"{source} is not a valid safetensors file: its header does not start with '{{'.");
        }

        var dataLength = fileLength - 8 - (long)length;
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
            return ParseHeader(document.RootElement, dataLength, 8 + (long)length, source);
        }
    }

    /// <summary>Reads one tensor as float32, converting F64, F16 and BF16.</summary>
    public static float[] ReadAsFloat32(Stream stream, Header header, Entry entry, string source)
    {
        stream.Seek(header.DataStart + entry.Begin, SeekOrigin.Begin);
        var count = entry.ElementCount;
        if (entry.DType == "F32")
        {
            return new ExactReader(stream, source, bytesBefore: header.DataStart + entry.Begin).ReadFloats(count, $"tensor '{entry.Name}'");
        }

        var result = new float[count];
        var size = ElementSizes[entry.DType];
        var buffer = new byte[Math.Min(count, 1 << 16) * size];
        var reader = new ExactReader(stream, source, bytesBefore: header.DataStart + entry.Begin);
        for (long done = 0; done < count;)
        {
            var n = (int)Math.Min(count - done, buffer.Length / size);
            var span = buffer.AsSpan(0, n * size);
            reader.ReadExactly(span, $"tensor '{entry.Name}'");
            for (var i = 0; i < n; i++)
            {
                var element = span.Slice(i * size, size);
                result[done + i] = entry.DType switch
                {
                    "F64" => (float)BinaryPrimitives.ReadDoubleLittleEndian(element),
                    "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(element),
                    _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(element) << 16), // BF16
                };
            }

            done += n;
        }

        return result;
    }

    /// <summary>Whether <see cref="ReadAsFloat32"/> can read the dtype.</summary>
    public static bool IsFloatingPoint(string dtype) => dtype is "F32" or "F64" or "F16" or "BF16";

    private static Header ParseHeader(JsonElement root, long dataLength, long dataStart, string source)
    {
        InvalidDataException Bad(string why) => new($"{source} is not a valid safetensors file: {why}.");

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw Bad("its header is not a JSON object");
        }

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

        if (expectedBegin != dataLength)
        {
            throw Bad($"the tensors cover {expectedBegin} bytes of data but the file holds {dataLength}");
        }

        return new Header(metadata, entries, dataStart);
    }

    private static Entry ParseEntry(JsonProperty property, long dataLength, Func<string, InvalidDataException> bad)
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

        if (offsets.Length != 2 || offsets[0] > offsets[1] || offsets[1] > dataLength)
        {
            throw bad($"tensor '{name}' has data offsets [{string.Join(", ", offsets)}], outside the {dataLength} bytes of data");
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
