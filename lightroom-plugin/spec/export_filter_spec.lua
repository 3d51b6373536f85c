-- The "AI Enhance" post-process action, end to end against the real bridge (spec/run.sh).
local Lr = require 'lightroom_standin'
local Env = require 'bridge_env'
local Scratch = require 'scratch'
local ImageInfo = require 'image_info'

local LrFunctionContext = import 'LrFunctionContext'

local function settings(changes)
	local props = { LR_format = 'TIFF', LR_export_bitDepth = 16, LR_export_colorSpace = 'sRGB',
		rb_upscale = true, rb_upscaleScale = 2, rb_upscaleModel = 'lanczos', rb_force16 = true }
	for k, v in pairs(changes or {}) do props[k] = v end
	return props
end

local function photo(name, renders, extra)
	local p = Lr.newPhoto { path = '/Volumes/Photos/2024/' .. name, fileFormat = 'RAW', renders = renders }
	for k, v in pairs(extra or {}) do p[k] = v end
	return p
end

local function runFilter(context)
	package.loaded.AIEnhanceFilterProvider = nil
	local provider = require 'AIEnhanceFilterProvider'
	-- Lightroom calls the filter in an async task of the export.
	Lr.runTask(function()
		LrFunctionContext.callWithContext('export', function(functionContext)
			provider.postProcessRenderedPhotos(functionContext, context)
		end)
	end)
	return context
end

local function outcome(context, i)
	return context.renditionsToSatisfy[i].done
end

describe('AI Enhance export filter, against the real bridge #bridge', function()
	local dest
	before_each(function()
		Lr.reset()
		Env.pair(Lr)
		dest = Scratch.dir('export')
	end)
	after_each(function()
		Scratch.cleanAll()
		assert.are.same({}, Env.leftoversInTemp(), 'temp files left behind')
	end)

	it('enhances a 16-bit TIFF export in place: x2 pixels, still 16-bit, ICC kept', function()
		local input = ImageInfo.read(Env.fixture('photo16.tif'))
		local context = runFilter(Lr.filterContext {
			propertyTable = settings(), destinationDir = dest,
			photos = { photo('A.cr2', { TIFF16 = Env.fixture('photo16.tif') }),
				photo('B.cr2', { TIFF16 = Env.fixture('photo16.tif') }) },
		})
		for i, name in ipairs({ 'A.tif', 'B.tif' }) do
			assert.are.same({ success = true }, outcome(context, i))
			-- Already a 16-bit TIFF export: Lightroom renders straight to the destination.
			assert.are.equal(dest .. '/' .. name, context.sources[i].destinationPath)
			local out = ImageInfo.read(dest .. '/' .. name)
			assert.are.equal('tiff', out.format)
			assert.are.equal(input.width * 2, out.width)
			assert.are.equal(input.height * 2, out.height)
			assert.are.equal(16, out.bits)
			assert.are.equal(3, out.channels)
			assert.are.equal(input.icc, out.icc)
			-- Lightroom's keywords and captions (XMP, IPTC) are in the enhanced file too.
			assert.are.equal(input.xmp, out.xmp)
			-- TIFF stores IPTC as LONGs (Photoshop's way): the same records, zero-padded to 4 bytes.
			assert.are.equal((input.iptc:gsub('%z+$', '')), (out.iptc:gsub('%z+$', '')))
			assert.are.equal(0, #out.iptc % 4)
		end
		assert.are.same({ 'A.tif', 'B.tif' }, Scratch.list(dest))
		-- Identity and token checked once, then per photo a fresh identity check and the upload.
		local seen = {}
		for _, req in ipairs(Lr.requests) do
			seen[#seen + 1] = req.method .. ' ' .. req.url:match('/v1/[^?]*') .. (req.url:find('?challenge=', 1, true)
				and '?challenge' or '') .. (req.headers.authorization and ' +token' or '')
		end
		assert.are.same({ 'GET /v1/health?challenge', 'GET /v1/jobs +token',
			'GET /v1/health?challenge', 'POST /v1/ops/upscale +token',
			'GET /v1/health?challenge', 'POST /v1/ops/upscale +token' }, seen)
		assert.matches('/v1/ops/upscale%?format=tiff$', Lr.requests[4].url)
	end)

	it('JPEG export with "16-bit render": renders a 16-bit TIFF in temp, saves the JPEG the user chose', function()
		local context = runFilter(Lr.filterContext {
			propertyTable = settings { LR_format = 'JPEG', LR_jpeg_quality = 0.9, LR_export_bitDepth = 8 },
			destinationDir = dest,
			photos = { photo('C.nef', { TIFF16 = Env.fixture('photo16.tif'), JPEG = Env.fixture('photo8.jpg') }) },
		})
		assert.are.same({ success = true }, outcome(context, 1))
		local source = context.sources[1]
		assert.are.equal('TIFF', source.settings.LR_format)
		assert.are.equal(16, source.settings.LR_export_bitDepth)
		assert.are.equal('sRGB', source.settings.LR_export_colorSpace, 'the colour space stays the user\'s')
		assert.are.equal('TIFF16', source.renderedAs)
		assert.are.equal(Env.tmp(), source.destinationPath:sub(1, #Env.tmp()))
		assert.matches('/v1/ops/upscale%?format=jpeg&quality=90$', Lr.requests[#Lr.requests].url)
		local out = ImageInfo.read(dest .. '/C.jpg')
		assert.are.equal('jpeg', out.format)
		assert.are.same({ 128, 96, 8 }, { out.width, out.height, out.bits })
		assert.are.equal(ImageInfo.readAll(Env.fixture('icc.bin')), out.icc)
		assert.are.equal(ImageInfo.readAll(Env.fixture('xmp.bin')), out.xmp)
		assert.truthy(out.photoshop:find(ImageInfo.readAll(Env.fixture('iptc.bin')), 1, true))
		assert.are.same({ 'C.jpg' }, Scratch.list(dest))
	end)

	it('an 8-bit TIFF export stays 8-bit: no 16-bit render is forced', function()
		local context = runFilter(Lr.filterContext {
			propertyTable = settings { LR_export_bitDepth = 8 }, destinationDir = dest,
			photos = { photo('N.cr2', { TIFF = Env.fixture('photo8.tif'), TIFF16 = Env.fixture('photo16.tif') }) },
		})
		assert.are.same({ success = true }, outcome(context, 1))
		assert.are.equal('TIFF', context.sources[1].renderedAs)
		local out = ImageInfo.read(dest .. '/N.tif')
		assert.are.same({ 'tiff', 128, 96, 8 }, { out.format, out.width, out.height, out.bits })
	end)

	it('without "16-bit render" the JPEG Lightroom rendered is enhanced in place, EXIF kept', function()
		local context = runFilter(Lr.filterContext {
			propertyTable = settings { LR_format = 'JPEG', LR_jpeg_quality = 0.8, rb_force16 = false },
			destinationDir = dest,
			photos = { photo('D.jpg', { JPEG = Env.fixture('photo8.jpg') }) },
		})
		assert.are.same({ success = true }, outcome(context, 1))
		assert.are.equal('JPEG', context.sources[1].renderedAs)
		local out = ImageInfo.read(dest .. '/D.jpg')
		assert.are.same({ 'jpeg', 128, 96 }, { out.format, out.width, out.height })
		assert.is_true(out.hasExif)
	end)

	it('PNG export: x4 upscale keeps the ICC profile', function()
		local context = runFilter(Lr.filterContext {
			propertyTable = settings { LR_format = 'PNG', rb_upscaleScale = 4, rb_force16 = false },
			destinationDir = dest,
			photos = { photo('E.dng', { PNG = Env.fixture('photo8.png') }) },
		})
		assert.are.same({ success = true }, outcome(context, 1))
		local out = ImageInfo.read(dest .. '/E.png')
		assert.are.same({ 'png', 256, 192 }, { out.format, out.width, out.height })
		assert.is_true(out.hasIcc)
	end)

	it('a photo the bridge cannot read fails alone; the others are enhanced', function()
		local context = runFilter(Lr.filterContext {
			propertyTable = settings(), destinationDir = dest,
			photos = {
				photo('1.cr2', { TIFF16 = Env.fixture('photo16.tif') }),
				photo('2.cr2', { TIFF16 = Env.fixture('corrupt.tif') }),
				photo('3.cr2', {}, { renderFails = 'The file could not be found.' }),
				photo('4.cr2', { TIFF16 = Env.fixture('photo16.tif') }),
			},
		})
		assert.is_true(outcome(context, 1).success)
		assert.is_false(outcome(context, 2).success)
		assert.matches('^Upscale x2 failed: Retouch Bridge', outcome(context, 2).message)
		assert.are.same({ success = false, message = 'The file could not be found.' }, outcome(context, 3))
		assert.is_true(outcome(context, 4).success)
		assert.are.equal(128, ImageInfo.read(dest .. '/1.tif').width)
		assert.are.equal(128, ImageInfo.read(dest .. '/4.tif').width)
		-- The failed photo's rendered file is left as Lightroom wrote it, not half-replaced.
		assert.are.equal(ImageInfo.readAll(Env.fixture('corrupt.tif')), ImageInfo.readAll(dest .. '/2.tif'))
		assert.are.same({ '1.tif', '2.tif', '4.tif' }, Scratch.list(dest))
	end)

	it('a step the bridge rejects reports the bridge\'s reason', function()
		local context = runFilter(Lr.filterContext {
			propertyTable = settings { LR_format = 'JPEG', rb_upscaleModel = 'NoSuchModel' }, destinationDir = dest,
			photos = { photo('F.cr2', { TIFF16 = Env.fixture('photo16.tif') }) },
		})
		local done = outcome(context, 1)
		assert.is_false(done.success)
		assert.matches('^Upscale x2 failed: Retouch Bridge rejected the request: .*model', done.message)
		assert.are.same({}, Scratch.list(dest), 'the temp render is gone, nothing half-written')
	end)

	it('bridge down: every photo is marked failed with "start the bridge", nothing is rendered', function()
		Env.pair(Lr, { url = 'http://127.0.0.1:' .. Env.freePort() })
		local context = runFilter(Lr.filterContext {
			propertyTable = settings { LR_format = 'JPEG' }, destinationDir = dest,
			photos = { photo('G.cr2', { TIFF16 = Env.fixture('photo16.tif') }),
				photo('H.cr2', { TIFF16 = Env.fixture('photo16.tif') }) },
		})
		for i = 1, 2 do
			local done = outcome(context, i)
			assert.is_false(done.success)
			assert.matches('not running at http://127%.0%.0%.1:%d+%. Start it', done.message)
			assert.are.equal('skipped', context.sources[i].renderResult)
		end
		assert.are.same({}, Scratch.list(dest))
	end)

	it('wrong token: the real bridge cannot prove it, so the token is never sent; each photo says to check it', function()
		Env.pair(Lr, { token = 'not-the-token' })
		local context = runFilter(Lr.filterContext {
			propertyTable = settings(), destinationDir = dest,
			photos = { photo('I.cr2', { TIFF16 = Env.fixture('photo16.tif') }) },
		})
		local done = outcome(context, 1)
		assert.is_false(done.success)
		assert.matches('not Retouch Bridge, or a bridge with another token%. Check the token', done.message)
		assert.are.equal('skipped', context.sources[1].renderResult)
		assert.are.equal(1, #Lr.requests, 'only the identity challenge')
		assert.is_nil(Lr.requests[1].headers.authorization)
		assert.are.same({}, Scratch.list(dest))
	end)

	it('HTTP 500 while enhancing: that photo fails with "see the bridge log", its file is not clobbered', function()
		local crashing = Env.startCrashingServer()
		finally(crashing.stop)
		Env.pair(Lr, { url = crashing.url })
		local context = runFilter(Lr.filterContext {
			propertyTable = settings { LR_format = 'JPEG', rb_force16 = false }, destinationDir = dest,
			photos = { photo('J.jpg', { JPEG = Env.fixture('photo8.jpg') }),
				photo('K.cr2', { JPEG = Env.fixture('photo8.jpg') }) },
		})
		for i, name in ipairs({ 'J.jpg', 'K.jpg' }) do
			local done = outcome(context, i)
			assert.is_false(done.success)
			assert.matches('simulated crash', done.message)
			assert.matches('HTTP 500', done.message)
			assert.matches('See the bridge log', done.message)
			assert.are.equal(ImageInfo.readAll(Env.fixture('photo8.jpg')), ImageInfo.readAll(dest .. '/' .. name))
		end
		assert.are.same({ 'J.jpg', 'K.jpg' }, Scratch.list(dest))
	end)

	it('cancel mid-export: the photo at the bridge finishes, the rest are never rendered or sent', function()
		local photos = {}
		for i = 1, 4 do photos[i] = photo('X' .. i .. '.cr2', { TIFF16 = Env.fixture('photo16.tif') }) end
		local context = Lr.filterContext {
			-- JPEG with the 16-bit render: each photo also passes through a temp file.
			propertyTable = settings { LR_format = 'JPEG', LR_jpeg_quality = 0.9 }, destinationDir = dest,
			photos = photos,
		}
		-- The user clicks the export's cancel while photo 2 is at the bridge.
		local uploads = 0
		Lr.onRequest = function(req)
			if req.method == 'POST' then
				uploads = uploads + 1
				if uploads == 2 then context.exportProgress:cancel() end
			end
		end
		runFilter(context)
		assert.are.equal(2, uploads, 'photos 3 and 4 were never sent')
		for i = 1, 2 do
			assert.are.same({ success = true }, outcome(context, i))
			local out = ImageInfo.read(dest .. '/X' .. i .. '.jpg')
			assert.are.same({ 'jpeg', 128 }, { out.format, out.width })
		end
		for i = 3, 4 do
			assert.is_nil(context.sources[i], 'photo ' .. i .. ' was not rendered')
			-- Lightroom reports the renditions the filter never took as cancelled itself.
			assert.is_nil(outcome(context, i))
		end
		-- No partial files: only the two finished JPEGs (after_each: nothing left in temp).
		assert.are.same({ 'X1.jpg', 'X2.jpg' }, Scratch.list(dest))
	end)

	it('an export format AI Enhance cannot write fails each photo with what to change', function()
		local context = runFilter(Lr.filterContext {
			propertyTable = settings { LR_format = 'PSD' }, destinationDir = dest,
			photos = { photo('L.cr2', { PSD = Env.fixture('photo16.tif') }) },
		})
		local done = outcome(context, 1)
		assert.is_false(done.success)
		assert.matches('Choose JPEG, TIFF or PNG under File Settings', done.message)
		assert.are.equal(0, #Lr.requests)
	end)

	it('with no step ticked the export passes through untouched', function()
		local context = runFilter(Lr.filterContext {
			propertyTable = settings { rb_upscale = false }, destinationDir = dest,
			photos = { photo('M.cr2', { TIFF16 = Env.fixture('photo16.tif') }) },
		})
		assert.are.same({ success = true }, outcome(context, 1))
		assert.are.equal(ImageInfo.readAll(Env.fixture('photo16.tif')), ImageInfo.readAll(dest .. '/M.tif'))
		assert.are.equal(0, #Lr.requests)
	end)
end)
