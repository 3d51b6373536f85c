local EnhanceSettings = require 'EnhanceSettings'

local function ops(plan)
	local names = {}
	for i, step in ipairs(plan) do names[i] = step.op end
	return names
end

local function with(changes)
	local s = EnhanceSettings.defaults()
	for k, v in pairs(changes) do s[k] = v end
	return s
end

describe('EnhanceSettings', function()
	it('defaults to a single x2 upscale with a 16-bit render', function()
		local plan = EnhanceSettings.plan(EnhanceSettings.defaults())
		assert.are.same({ 'upscale' }, ops(plan))
		assert.are.same({ scale = 2, model = 'RealESRGAN_x4plus' }, plan[1].params)
		assert.is_true(EnhanceSettings.defaults().rb_force16)
	end)

	it('builds every step with the bridge operation names and parameters', function()
		local plan = EnhanceSettings.plan(with {
			rb_cleanup = true, rb_cleanupMode = 'jpeg', rb_cleanupStrength = 0.8,
			rb_faces = true, rb_facesModel = 'CodeFormer', rb_facesFidelity = 0.7,
			rb_upscale = true, rb_upscaleScale = 4, rb_upscaleModel = 'lanczos',
			rb_background = 'standardize',
		})
		assert.are.same({ 'denoise', 'restore-faces', 'upscale', 'standardize' }, ops(plan))
		assert.are.same({ model = 'FBCNN', strength = 0.8 }, plan[1].params)
		assert.are.same({ model = 'CodeFormer', fidelity = 0.7 }, plan[2].params)
		assert.are.same({ scale = 4, model = 'lanczos' }, plan[3].params)
		assert.are.same({}, plan[4].params)
	end)

	it('follows the chosen order', function()
		local s = with { rb_cleanup = true, rb_faces = true, rb_background = 'remove' }
		s.rb_order = 'cleanup,upscale,faces,background'
		assert.are.same({ 'denoise', 'upscale', 'restore-faces', 'remove-background' }, ops(EnhanceSettings.plan(s)))
		s.rb_order = 'faces,cleanup,upscale,background'
		assert.are.same({ 'restore-faces', 'denoise', 'upscale', 'remove-background' }, ops(EnhanceSettings.plan(s)))
	end)

	it('still runs a step a damaged order string forgets, once', function()
		local s = with { rb_cleanup = true, rb_faces = true }
		s.rb_order = 'upscale, upscale ,bogus'
		assert.are.same({ 'upscale', 'denoise', 'restore-faces' }, ops(EnhanceSettings.plan(s)))
	end)

	it('uses SCUNet for denoise, clamps sliders and rounds them to what the user saw', function()
		local plan = EnhanceSettings.plan(with { rb_upscale = false, rb_cleanup = true,
			rb_cleanupStrength = 1.7, rb_faces = true, rb_facesFidelity = 0.30000000000000004 })
		assert.are.same({ model = 'SCUNet', strength = 1 }, plan[1].params)
		assert.are.equal(0.3, plan[2].params.fidelity)
	end)

	it('plans nothing when nothing is ticked', function()
		assert.are.same({}, EnhanceSettings.plan(with { rb_upscale = false }))
		assert.are.equal('No AI steps chosen', EnhanceSettings.synopsis(with { rb_upscale = false }))
	end)

	it('describes the plan in one line', function()
		assert.are.equal('Restore faces > Upscale x4 (16-bit render)',
			EnhanceSettings.synopsis(with { rb_faces = true, rb_upscaleScale = 4 }, 'JPEG'))
		assert.are.equal('Restore faces > Upscale x4',
			EnhanceSettings.synopsis(with { rb_faces = true, rb_upscaleScale = 4 }, 'TIFF'))
	end)

	it('maps Lightroom formats to bridge formats with JPEG quality as a percentage', function()
		assert.are.same({ format = 'jpeg', extension = 'jpg', quality = 85 }, EnhanceSettings.outputFor('JPEG', 0.85))
		assert.are.same({ format = 'jpeg', extension = 'jpg', quality = 77 }, EnhanceSettings.outputFor('JPEG', 77))
		assert.are.same({ format = 'tiff', extension = 'tif' }, EnhanceSettings.outputFor('TIFF'))
		assert.are.same({ format = 'png', extension = 'png' }, EnhanceSettings.outputFor('PNG'))
		assert.is_nil(EnhanceSettings.outputFor('PSD'))
		assert.is_nil(EnhanceSettings.outputFor('DNG'))
		assert.is_nil(EnhanceSettings.outputFor('ORIGINAL'))
	end)

	it('refuses formats it cannot write and transparency in JPEG, saying what to change', function()
		local ok, message = EnhanceSettings.validate(EnhanceSettings.defaults(), 'DNG')
		assert.is_false(ok)
		assert.matches('File Settings', message)
		ok, message = EnhanceSettings.validate(with { rb_background = 'remove' }, 'JPEG')
		assert.is_false(ok)
		assert.matches('TIFF or PNG', message)
		assert.is_true(EnhanceSettings.validate(with { rb_background = 'remove' }, 'PNG'))
		assert.is_true(EnhanceSettings.validate(with { rb_background = 'standardize' }, 'JPEG'))
	end)

	it('reads property tables with gaps as defaults and copies only its own keys', function()
		local read = EnhanceSettings.read({ rb_faces = true, other = 1 })
		assert.is_true(read.rb_faces)
		assert.are.equal(2, read.rb_upscaleScale)
		assert.is_nil(read.other)
		local target = {}
		EnhanceSettings.copy(read, target)
		assert.are.same(read, target)
	end)
end)
