using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Vae.ML.Datasets;

/// <summary>One of the four official MNIST IDX files: its name, its exact size and the MD5 of its raw content.</summary>
internal sealed record MnistFileSpec(string Name, long Size, string Md5)
{
    public static readonly MnistFileSpec TrainImages = new("train-images-idx3-ubyte", 47_040_016, "6bbc9ace898e44ae57da46a324031adb");
    public static readonly MnistFileSpec TrainLabels = new("train-labels-idx1-ubyte", 60_008, "a25bea736e30d166cdddb491f175f624");
    public static readonly MnistFileSpec TestImages = new("t10k-images-idx3-ubyte", 7_840_016, "2646ac647ad5339dbf082846283269ea");
    public static readonly MnistFileSpec TestLabels = new("t10k-labels-idx1-ubyte", 10_008, "27ae3e4e09519cfbb04c329615203637");

    public static IReadOnlyList<MnistFileSpec> All { get; } = [TrainImages, TrainLabels, TestImages, TestLabels];

    /// <summary>Name of the gzip-compressed form, as on the official mirrors.</summary>
    public string GzipName => Name + ".gz";
}

/// <summary>
/// The data directory seen as a store of verified MNIST files. Files are always stored raw (decompressed); every
/// file is checked against its official MD5 before it is used, and new files are written to a temporary file in
/// the same directory and then renamed over the final name, so readers and concurrent writers never see a partial
/// file.
/// </summary>
internal sealed class MnistFileStore
{
    private readonly ILogger _logger;
    private readonly List<MnistFileSpec> _missing;

    public MnistFileStore(string directory, IEnumerable<MnistFileSpec> wanted, ILogger logger)
    {
        Directory = directory;
        _logger = logger;
        _missing = [.. wanted];
    }

    public string Directory { get; }

    /// <summary>Wanted files that are not (yet) verified in the directory.</summary>
    public IReadOnlyList<MnistFileSpec> Missing => _missing;

    /// <summary>What went wrong so far, one line per problem, for the final error message.</summary>
    public List<string> Problems { get; } = [];

    public string PathOf(MnistFileSpec file) => Path.Combine(Directory, file.Name);

    /// <summary>Accepts wanted files already in the directory: raw with the right MD5, or gzip whose content has it.</summary>
    public void ScanDirectory()
    {
        foreach (var file in _missing.ToArray())
        {
            string rawPath = PathOf(file);
            if (File.Exists(rawPath))
            {
                string? problem = CheckRawFile(rawPath, file);
                if (problem is null)
                {
                    _logger.LogDebug("MNIST file {File} found in {Directory} (MD5 verified).", file.Name, Directory);
                    _missing.Remove(file);
                    continue;
                }

                _logger.LogWarning("MNIST file {Path} is rejected: {Problem}. It will be replaced.", rawPath, problem);
                Problems.Add($"data directory: '{rawPath}' rejected: {problem}");
            }

            string gzipPath = Path.Combine(Directory, file.GzipName);
            if (File.Exists(gzipPath))
            {
                try
                {
                    using var content = IdxReader.OpenRead(gzipPath);
                    TryPlace(file, content, $"'{gzipPath}' (decompressed)");
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or InvalidDataException)
                {
                    Problems.Add($"data directory: '{gzipPath}' unreadable: {exception.Message}");
                }
            }
            else if (!File.Exists(rawPath))
            {
                Problems.Add($"data directory: neither '{file.Name}' nor '{file.GzipName}' present");
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="rawContent"/> as <paramref name="file"/> when its MD5 is the official one; otherwise
    /// records the problem and leaves the directory as it was.
    /// </summary>
    /// <returns>True when the file was placed.</returns>
    public bool TryPlace(MnistFileSpec file, Stream rawContent, string source)
    {
        if (!_missing.Contains(file))
        {
            return true;
        }

        string finalPath = PathOf(file);
        string tempPath = Path.Combine(Directory, $".{file.Name}.{Guid.NewGuid():N}.tmp");
        try
        {
            string md5;
            long length;
            using (var temp = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                (md5, length) = CopyHashed(rawContent, temp, file.Size + 1);
            }

            if (length != file.Size || md5 != file.Md5)
            {
                string problem = Mismatch(file, length, md5);
                _logger.LogWarning("MNIST file {File} from {Source} is rejected: {Problem}.", file.Name, source, problem);
                Problems.Add($"{source}: {file.Name} rejected: {problem}");
                return false;
            }

            MoveIntoPlace(tempPath, finalPath, file);
            _missing.Remove(file);
            _logger.LogInformation("MNIST file {File} obtained from {Source}, MD5 verified, stored as {Path}.", file.Name, source, finalPath);
            return true;
        }
        finally
        {
            TryDelete(tempPath);
        }
    }

    private static void MoveIntoPlace(string tempPath, string finalPath, MnistFileSpec file)
    {
        try
        {
            File.Move(tempPath, finalPath, overwrite: true);
        }
        catch (IOException) when (CheckRawFile(finalPath, file) is null)
        {
            // Another process placed the same verified file first and holds it open (Windows forbids replacing it).
        }
        catch (UnauthorizedAccessException) when (CheckRawFile(finalPath, file) is null)
        {
            // Same as above, reported differently by some file systems.
        }
    }

    /// <summary>Null when the raw file has the official size and MD5, else why not.</summary>
    private static string? CheckRawFile(string path, MnistFileSpec file)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 1 << 16);
            if (stream.Length != file.Size)
            {
                return $"size {stream.Length} bytes, expected {file.Size}";
            }

            var (md5, length) = CopyHashed(stream, Stream.Null, file.Size + 1);
            return length == file.Size && md5 == file.Md5 ? null : Mismatch(file, length, md5);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return $"unreadable ({exception.Message})";
        }
    }

    private static string Mismatch(MnistFileSpec file, long length, string md5)
        => length > file.Size ? $"more than the expected {file.Size} bytes"
            : length != file.Size ? $"size {length} bytes, expected {file.Size}"
            : $"MD5 {md5}, expected {file.Md5}";

    /// <summary>Copies at most <paramref name="limit"/> bytes while hashing them; returns the lower-case hex MD5 and the count.</summary>
    private static (string Md5, long Length) CopyHashed(Stream source, Stream destination, long limit)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        var buffer = new byte[1 << 16];
        long total = 0;
        while (total < limit)
        {
            int read = source.Read(buffer, 0, (int)Math.Min(buffer.Length, limit - total));
            if (read == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, read);
            destination.Write(buffer, 0, read);
            total += read;
        }

        return (Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant(), total);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // A leftover temporary file is harmless: it is never read.
        }
    }
}
