using Vae.ML.Persistence;

namespace Vae.ML.Tests.Persistence;

/// <summary>
/// Damaged Vae.ML files that still carry valid checksums, as a careful forger would make them: only the check under
/// test can refuse them, not the SHA-256 sums.
/// </summary>
internal static class Forgery
{
    /// <summary>The file with its metadata and tensors edited (and <paramref name="added"/> appended), and both checksums recomputed.</summary>
    public static byte[] Resealed(
        byte[] file, Action<Dictionary<string, string>> editMetadata, Func<Safetensors.RawTensor, Safetensors.RawTensor?>? editTensor = null,
        IEnumerable<Safetensors.RawTensor>? added = null)
    {
        var header = Safetensors.ReadHeader(new MemoryStream(file), file.Length, "test");
        var metadata = header.Metadata.ToDictionary(m => m.Key, m => m.Value);
        editMetadata(metadata);
        var tensors = header.Entries.OrderBy(e => e.Begin)
            .Select(e => new Safetensors.RawTensor(e.Name, e.DType, e.Shape, file[(int)(header.DataStart + e.Begin)..(int)(header.DataStart + e.End)]))
            .Select(editTensor ?? (t => t))
            .OfType<Safetensors.RawTensor>()
            .Concat(added ?? [])
            .ToList();
        if (metadata.ContainsKey(VaeModelFormat.Keys.TensorsSha256))
        {
            metadata[VaeModelFormat.Keys.TensorsSha256] = Safetensors.DataSha256(tensors);
        }

        if (metadata.ContainsKey(VaeModelFormat.Keys.HeaderSha256))
        {
            metadata[VaeModelFormat.Keys.HeaderSha256] = VaeModelFormat.HeaderSha256(metadata, tensors);
        }

        using var buffer = new MemoryStream();
        Safetensors.Write(buffer, tensors, metadata);
        return buffer.ToArray();
    }
}
