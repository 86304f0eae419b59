using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Datasets;

namespace Vae.ML.Tests.Datasets;

public sealed class MnistImagesTests
{
    private static MnistImages ThreeImagesOf2x2()
        => new(2, 2, [.. Enumerable.Range(0, 12).Select(i => i / 12f)], [0, 1, 9]);

    [Fact]
    public void Exposes_shape_and_images()
    {
        var images = ThreeImagesOf2x2();

        images.Count.Should().Be(3);
        images.PixelsPerImage.Should().Be(4);
        images.GetImage(2).ToArray().Should().Equal(8 / 12f, 9 / 12f, 10 / 12f, 11 / 12f);
        Action outOfRange = () => images.GetImage(3);
        outOfRange.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void Take_copies_the_first_images()
    {
        var images = ThreeImagesOf2x2();

        var first = images.Take(2);

        first.Count.Should().Be(2);
        first.Labels.Should().Equal(0, 1);
        first.Pixels.Should().Equal(images.Pixels[..8]);
        first.Pixels.Should().NotBeSameAs(images.Pixels);
        images.Take(0).Count.Should().Be(0);
        var tooMany = () => images.Take(4);
        tooMany.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void Data_view_has_label_and_features_of_the_image_size()
    {
        var view = ThreeImagesOf2x2().ToDataView(new MLContext(seed: 1));

        view.Schema[Mnist.LabelColumnName].Type.Should().Be(NumberDataViewType.UInt32);
        view.Schema[Mnist.FeaturesColumnName].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 4));
        view.GetColumn<uint>(Mnist.LabelColumnName).Should().Equal(0u, 1u, 9u);
        view.GetColumn<float[]>(Mnist.FeaturesColumnName).First().Should().Equal(0f, 1 / 12f, 2 / 12f, 3 / 12f);
    }

    [Fact]
    public void Constructor_refuses_mismatched_arrays()
    {
        var act = () => new MnistImages(28, 28, new float[784 * 2], new byte[3]);

        act.Should().Throw<ArgumentException>().WithMessage("*3 labelled images of 28x28 need 2352 pixels*1568*");
    }
}
