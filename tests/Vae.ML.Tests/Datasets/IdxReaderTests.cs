using Vae.ML.Datasets;

namespace Vae.ML.Tests.Datasets;

public sealed class IdxReaderTests : IDisposable
{
    private static readonly byte[] Pixels = [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]; // 2 images of 2x3
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Images_and_labels_round_trip_raw_or_gzip(bool compressed)
    {
        byte[] images = IdxTestFiles.Images(IdxReader.ImagesMagicNumber, 2, 2, 3, Pixels);
        byte[] labels = IdxTestFiles.Labels(IdxReader.LabelsMagicNumber, [7, 3]);
        // Deliberately no .gz suffix: compression must be recognised from the content.
        string imagesPath = Write("images-idx3-ubyte", compressed ? IdxTestFiles.Gzip(images) : images);
        string labelsPath = Write("labels-idx1-ubyte", compressed ? IdxTestFiles.Gzip(labels) : labels);

        var read = IdxReader.ReadImages(imagesPath);
        read.Count.Should().Be(2);
        read.Rows.Should().Be(2);
        read.Columns.Should().Be(3);
        read.Pixels.Should().Equal(Pixels);
        IdxReader.ReadLabels(labelsPath).Should().Equal(7, 3);

        var mnist = MnistImages.FromIdxFiles(imagesPath, labelsPath);
        mnist.Count.Should().Be(2);
        mnist.PixelsPerImage.Should().Be(6);
        mnist.Labels.Should().Equal(7, 3);
        mnist.GetImage(1).ToArray().Should().Equal(Pixels[6..].Select(p => p / 255f));
        mnist.Pixels[0].Should().Be(0f);
        mnist.Pixels[^1].Should().Be(1f);
    }

    [Fact]
    public void Wrong_magic_number_is_reported_with_the_file_name()
    {
        string labelsPath = Write("labels-idx1-ubyte", IdxTestFiles.Labels(IdxReader.LabelsMagicNumber, [1, 2]));

        var act = () => IdxReader.ReadImages(labelsPath);

        act.Should().Throw<InvalidDataException>()
            .WithMessage($"*'{labelsPath}'*magic number 0x00000801*expected 0x00000803*");
    }

    [Fact]
    public void Image_file_read_as_labels_is_rejected()
    {
        string imagesPath = Write("images-idx3-ubyte", IdxTestFiles.Images(IdxReader.ImagesMagicNumber, 2, 2, 3, Pixels));

        var act = () => IdxReader.ReadLabels(imagesPath);

        act.Should().Throw<InvalidDataException>().WithMessage($"*'{imagesPath}'*0x00000803*expected 0x00000801*");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Truncated_data_is_reported_with_the_file_name(bool compressed)
    {
        byte[] images = IdxTestFiles.Images(IdxReader.ImagesMagicNumber, 2, 2, 3, Pixels);
        byte[] truncated = images[..^4];
        string path = Write("images-idx3-ubyte", compressed ? IdxTestFiles.Gzip(truncated) : truncated);

        var act = () => IdxReader.ReadImages(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"*'{path}'*truncated*2 images of 2x3 pixels*12 bytes*only 8*");
    }

    [Fact]
    public void File_ending_inside_the_header_is_reported()
    {
        string path = Write("labels-idx1-ubyte", IdxTestFiles.Labels(IdxReader.LabelsMagicNumber, [1])[..6]);

        var act = () => IdxReader.ReadLabels(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"*'{path}'*truncated*header*");
    }

    [Fact]
    public void Damaged_gzip_stream_is_reported_with_the_file_name()
    {
        byte[] gzip = IdxTestFiles.Gzip(IdxTestFiles.Images(IdxReader.ImagesMagicNumber, 2, 2, 3, Pixels));
        string path = Write("images-idx3-ubyte.gz", gzip[..(gzip.Length / 2)]);

        var act = () => IdxReader.ReadImages(path);

        // .NET's GZipStream reports a cut-off stream either as damaged data or as an early end (then: truncated).
        var message = act.Should().Throw<InvalidDataException>().WithMessage($"*'{path}'*").Which.Message;
        message.Should().MatchRegex("damaged|truncated");
    }

    [Fact]
    public void Extra_bytes_after_the_announced_data_are_reported()
    {
        byte[] labels = [.. IdxTestFiles.Labels(IdxReader.LabelsMagicNumber, [1, 2]), 9];
        string path = Write("labels-idx1-ubyte", labels);

        var act = () => IdxReader.ReadLabels(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"*'{path}'*longer than its header announces*");
    }

    [Fact]
    public void Label_count_different_from_image_count_names_both_files()
    {
        string imagesPath = Write("images-idx3-ubyte", IdxTestFiles.Images(IdxReader.ImagesMagicNumber, 2, 2, 3, Pixels));
        string labelsPath = Write("labels-idx1-ubyte", IdxTestFiles.Labels(IdxReader.LabelsMagicNumber, [1, 2, 3]));

        var act = () => MnistImages.FromIdxFiles(imagesPath, labelsPath);

        act.Should().Throw<InvalidDataException>()
            .WithMessage($"*'{labelsPath}' holds 3 labels*'{imagesPath}' holds 2 images*");
    }

    [Fact]
    public void Missing_file_throws_file_not_found()
    {
        var act = () => IdxReader.ReadLabels(_directory.File("absent"));

        act.Should().Throw<FileNotFoundException>();
    }

    private string Write(string name, byte[] content)
    {
        string path = _directory.File(name);
        File.WriteAllBytes(path, content);
        return path;
    }
}
