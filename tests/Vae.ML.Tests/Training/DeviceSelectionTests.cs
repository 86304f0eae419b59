using Microsoft.ML;
using TorchSharp;
using Vae.ML.Tests.Reliability;
using Vae.ML.Torch;

namespace Vae.ML.Tests.Training;

/// <summary>Device = "auto" under MLContext.GpuDeviceId / FallbackToCpu: the rule as a pure function, and the CPU path end to end.</summary>
public sealed class DeviceSelectionTests
{
    private static (DeviceType, int) Choose(string device, int? gpu, bool fallback, bool cuda, int count)
    {
        var (type, index, _) = VaeModel.ChooseDevice(device, new GpuRequest(gpu, fallback), cuda, count);
        return (type, index);
    }

    [Theory]
    [InlineData("auto", null, false, false, 0, DeviceType.CPU, 0)]
    [InlineData("auto", null, false, true, 2, DeviceType.CUDA, 0)]
    [InlineData("auto", 1, false, true, 2, DeviceType.CUDA, 1)]
    [InlineData("auto", 0, true, false, 0, DeviceType.CPU, 0)]
    [InlineData("auto", 3, true, true, 2, DeviceType.CPU, 0)]
    [InlineData("AUTO", 1, true, true, 2, DeviceType.CUDA, 1)]
    [InlineData("cpu", 0, false, true, 2, DeviceType.CPU, 0)]
    [InlineData("cuda", null, false, true, 2, DeviceType.CUDA, 0)]
    [InlineData("cuda:1", 0, false, true, 2, DeviceType.CUDA, 1)]
    public void Rule_picks(string device, int? gpu, bool fallback, bool cuda, int count, DeviceType type, int index)
        => Choose(device, gpu, fallback, cuda, count).Should().Be((type, index));

    [Fact]
    public void Asking_for_a_missing_gpu_without_fallback_names_both_settings()
    {
        var act = () => Choose("auto", 0, false, false, 0);
        act.Should().Throw<InvalidOperationException>().WithMessage("*GpuDeviceId = 0*FallbackToCpu*");
        var tooHigh = () => Choose("auto", 2, false, true, 2);
        tooHigh.Should().Throw<InvalidOperationException>().WithMessage("*2 CUDA device(s) are present*");
        var negative = () => Choose("auto", -1, true, true, 2);
        negative.Should().Throw<ArgumentOutOfRangeException>().Where(e => e.ParamName == "GpuDeviceId");
        var explicitCuda = () => Choose("cuda:0", null, true, false, 0);
        explicitCuda.Should().Throw<InvalidOperationException>("an explicit device is not subject to FallbackToCpu");
        var missingIndex = () => Choose("cuda:2", null, false, true, 2);
        missingIndex.Should().Throw<ArgumentOutOfRangeException>();
    }

    /// <summary>What this machine should pick for "auto" with GPU 0 asked for and falling back allowed.</summary>
    private static string Expected(bool fallback)
    {
        var cuda = torch.cuda.is_available();
        var (type, index, _) = VaeModel.ChooseDevice("auto", new GpuRequest(0, fallback), cuda, cuda ? torch.cuda.device_count() : 0);
        return type == DeviceType.CPU ? "cpu" : $"cuda:{index}";
    }

    [Fact]
    public void Training_honours_the_contexts_gpu_settings_and_logs_the_choice()
    {
        var ml = new MLContext(seed: 0) { GpuDeviceId = 0, FallbackToCpu = true };
        var messages = new List<string>();
        ml.Log += (_, e) => messages.Add(e.Message);
        var options = TrainingTestSupport.Options(epochs: 1);
        options.Device = "auto";
        using var vae = ml.Transforms.Vae(options).Fit(TrainingTestSupport.TrainingRows(ml));
        vae.Device.Should().Be(Expected(fallback: true));
        messages.Should().Contain(m => m.Contains("Training VAE") && m.Contains("GpuDeviceId = 0"));

        if (!torch.cuda.is_available())
        {
            var strict = new MLContext(seed: 0) { GpuDeviceId = 0, FallbackToCpu = false };
            var act = () => strict.Transforms.Vae(options).Fit(TrainingTestSupport.TrainingRows(strict));
            act.Should().Throw<InvalidOperationException>().WithMessage("*FallbackToCpu is false*");
        }
    }

    [Fact]
    public void Model_Load_places_the_vae_on_the_loading_contexts_device()
    {
        var ml = new MLContext(seed: 0);
        var data = TrainingTestSupport.TrainingRows(ml);
        using var vae = ml.Transforms.Vae(TrainingTestSupport.Options(epochs: 1)).Fit(data);
        using var folder = new TrainingTestSupport.TempFolder();
        Directory.CreateDirectory(folder.Path);
        var zip = folder.File("model.zip");
        ml.Model.Save(vae, data.Schema, zip);
        var file = folder.File("model.safetensors");
        vae.Save(file);

        var fallback = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = true };
        var messages = new List<string>();
        fallback.Log += (_, e) => messages.Add(e.Message);
        var loaded = fallback.Model.Load(zip, out _);
        using (var loadedVae = loaded.Should().BeOfType<VaeTransformer>().Subject)
        {
            loadedVae.Device.Should().Be(Expected(fallback: true));
        }

        messages.Should().Contain(m => m.Contains("Loaded VAE on") && m.Contains("GpuDeviceId = 0"));
        using (var direct = VaeTransformer.Load(fallback, file))
        {
            direct.Device.Should().Be(Expected(fallback: true));
        }

        if (!torch.cuda.is_available())
        {
            var strict = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = false };
            // ML.NET calls the loader by reflection, so the loader's exception arrives wrapped.
            var act = () => strict.Model.Load(zip, out _);
            act.Should().Throw<System.Reflection.TargetInvocationException>()
                .WithInnerException<InvalidOperationException>().WithMessage("*FallbackToCpu is false*");

            // An explicit device is the caller's choice; the context's settings do not apply to it.
            using var onCpu = VaeTransformer.Load(strict, file, "cpu");
            onCpu.Device.Should().Be("cpu");
        }
    }
}
