-- "Enhance selected photos…": export, enhance, stack above the original; against the real bridge.
local Lr = require 'lightroom_standin'
local Env = require 'bridge_env'
local Scratch = require 'scratch'
local ImageInfo = require 'image_info'

local function runMenuItem()
	package.loaded.EnhanceSelected = nil
	Lr.runPluginFile('EnhanceSelectedMenuItem.lua')
end

local function lastMessage() return Lr.messages[#Lr.messages] end

describe('Enhance selected photos, against the real bridge #bridge', function()
	local library
	local function original(name, fileFormat, renders, extra)
		local path = Scratch.write(library .. '/' .. name, 'original raw bytes of ' .. name)
		local photo = Lr.newPhoto { path = path, fileFormat = fileFormat, renders = renders }
		for k, v in pairs(extra or {}) do photo[k] = v end
		Lr.catalog.photos[#Lr.catalog.photos + 1] = photo
		return photo
	end

	before_each(function()
		Lr.reset()
		Env.pair(Lr)
		library = Scratch.dir('library')
		-- What the user last chose in the dialog (the dialog answers OK).
		Lr.prefs.rb_upscale, Lr.prefs.rb_upscaleScale, Lr.prefs.rb_upscaleModel = true, 2, 'lanczos'
	end)
	after_each(function()
		Scratch.cleanAll()
		assert.are.same({}, Env.leftoversInTemp(), 'temp files left behind')
	end)

	it('adds one enhanced 16-bit TIFF stacked above each original', function()
		local photos = {
			original('IMG_0001.CR2', 'RAW', { TIFF16 = Env.fixture('photo16.tif') }),
			original('IMG_0002.CR2', 'RAW', { TIFF16 = Env.fixture('photo16.tif') }),
			original('IMG_0003.jpg', 'JPG', { TIFF16 = Env.fixture('photo16.tif') }),
		}
		Lr.catalog.targetPhotos = photos
		runMenuItem()

		assert.are.equal(1, #Lr.modalDialogs)
		assert.are.equal(3, #Lr.catalog.added)
		for i, photo in ipairs(photos) do
			local added = Lr.catalog.added[i]
			assert.are.equal(photo, added.stackWith)
			assert.are.equal('above', added.position)
			local stem = photo.path:match('([^/]+)%.%w+$')
			assert.are.equal(library .. '/' .. stem .. '-enhanced.tif', added.path)
			local out = ImageInfo.read(added.path)
			assert.are.same({ 'tiff', 128, 96, 16 }, { out.format, out.width, out.height, out.bits })
			-- Rendered at full quality, as 16-bit TIFF, nothing resized or sharpened.
			local settings = Lr.sessions[i].exportSettings
			-- All metadata embedded: LR_embeddedMetadataOption (Lightroom 4+) and the older flag.
			assert.are.same({ 'TIFF', 16, false, false, false, 'all' },
				{ settings.LR_format, settings.LR_export_bitDepth, settings.LR_size_doConstrain,
					settings.LR_outputSharpeningOn, settings.LR_minimizeEmbeddedMetadata,
					settings.LR_embeddedMetadataOption })
		end
		assert.are.equal(3, #Lr.catalog.writes)
		local scope = Lr.progressScopes[1]
		assert.is_true(scope.finished)
		assert.are.same({ 3, 3 }, scope.portions[#scope.portions])
		assert.are.equal('info', lastMessage().style)
		assert.matches('3 of 3 photos enhanced', lastMessage().message)
		-- Originals untouched; only the enhanced files are new.
		assert.are.same({ 'IMG_0001-enhanced.tif', 'IMG_0001.CR2', 'IMG_0002-enhanced.tif', 'IMG_0002.CR2',
			'IMG_0003-enhanced.tif', 'IMG_0003.jpg' }, Scratch.list(library))
		assert.are.equal('original raw bytes of IMG_0001.CR2', Scratch.read(library .. '/IMG_0001.CR2'))
	end)

	it('"same as the original" keeps a JPEG a JPEG and never overwrites an earlier result', function()
		Lr.prefs.rb_stackFormat = 'original'
		local jpeg = original('beach.jpg', 'JPG', { JPEG = Env.fixture('photo8.jpg') })
		Scratch.write(library .. '/beach-enhanced.jpg', 'an earlier result')
		Lr.catalog.targetPhotos = { jpeg }
		runMenuItem()
		assert.are.equal(1, #Lr.catalog.added)
		assert.are.equal(library .. '/beach-enhanced-2.jpg', Lr.catalog.added[1].path)
		local out = ImageInfo.read(Lr.catalog.added[1].path)
		assert.are.same({ 'jpeg', 128, 96 }, { out.format, out.width, out.height })
		assert.are.equal('an earlier result', Scratch.read(library .. '/beach-enhanced.jpg'))
		assert.are.equal('JPEG', Lr.sessions[1].exportSettings.LR_format)
	end)

	it('background removal never stacks a JPEG, even with "same as the original"', function()
		Lr.prefs.rb_stackFormat = 'original'
		Lr.prefs.rb_upscale, Lr.prefs.rb_background = false, 'remove'
		Lr.catalog.targetPhotos = { original('shoe.jpg', 'JPG', { TIFF16 = Env.fixture('photo16.tif') }) }
		-- main has no remove-background yet: capture that call and answer as the bridge would.
		Lr.intercept = function(req)
			if req.url:find('/v1/ops/remove-background', 1, true) then
				return ImageInfo.readAll(Env.fixture('photo16.tif')), { status = 200 }
			end
		end
		runMenuItem()
		assert.are.equal('TIFF', Lr.sessions[1].exportSettings.LR_format)
		assert.matches('/v1/ops/remove%-background%?format=tiff$', Lr.requests[#Lr.requests].url)
		assert.are.equal(library .. '/shoe-enhanced.tif', Lr.catalog.added[1].path)
	end)

	it('cancel stops after the photo in hand: it is stacked, the rest are not started', function()
		local photos = {}
		for i = 1, 3 do
			photos[i] = original('P' .. i .. '.CR2', 'RAW', { TIFF16 = Env.fixture('photo16.tif') })
		end
		Lr.catalog.targetPhotos = photos
		-- The user clicks the progress bar's cancel while photo 1 is at the bridge.
		Lr.onRequest = function(req)
			if req.method == 'POST' then Lr.progressScopes[1]:cancel() end
		end
		runMenuItem()
		assert.are.equal(1, #Lr.catalog.added)
		assert.are.equal(photos[1], Lr.catalog.added[1].stackWith)
		assert.are.equal(128, ImageInfo.read(Lr.catalog.added[1].path).width)
		assert.are.equal(1, #Lr.sessions, 'photos 2 and 3 were never exported')
		assert.is_true(Lr.progressScopes[1].finished)
		assert.matches('1 of 3 photos enhanced', lastMessage().message)
		assert.matches('Cancelled: 2 photos were not started', lastMessage().message)
		assert.are.same({ 'P1-enhanced.tif', 'P1.CR2', 'P2.CR2', 'P3.CR2' }, Scratch.list(library))
	end)

	it('a photo that fails is reported by name; the others are stacked', function()
		local good = original('ok.CR2', 'RAW', { TIFF16 = Env.fixture('photo16.tif') })
		local bad = original('broken.CR2', 'RAW', { TIFF16 = Env.fixture('corrupt.tif') })
		local video = original('clip.mov', 'VIDEO', {})
		Lr.catalog.targetPhotos = { bad, video, good }
		runMenuItem()
		assert.are.equal(1, #Lr.catalog.added)
		assert.are.equal(good, Lr.catalog.added[1].stackWith)
		local report = lastMessage()
		assert.are.equal('warning', report.style)
		assert.matches('1 of 3 photos enhanced', report.message)
		assert.matches('broken%.CR2: Upscale x2 failed: Retouch Bridge', report.message)
		assert.matches('clip%.mov: Videos cannot be enhanced', report.message)
		assert.are.same({ 'broken.CR2', 'clip.mov', 'ok-enhanced.tif', 'ok.CR2' }, Scratch.list(library))
	end)

	it('bridge down: nothing is exported or added, and the message says to start the bridge', function()
		Env.pair(Lr, { url = 'http://127.0.0.1:' .. Env.freePort() })
		Lr.catalog.targetPhotos = { original('x.CR2', 'RAW', { TIFF16 = Env.fixture('photo16.tif') }) }
		runMenuItem()
		assert.are.equal(0, #Lr.catalog.added)
		assert.are.equal(0, #Lr.sessions)
		assert.are.equal('critical', lastMessage().style)
		assert.matches('not running at', lastMessage().message)
	end)

	it('wrong token: nothing is exported, the token is never sent, the message says to check it', function()
		Env.pair(Lr, { token = 'wrong' })
		Lr.catalog.targetPhotos = { original('x.CR2', 'RAW', { TIFF16 = Env.fixture('photo16.tif') }) }
		runMenuItem()
		assert.are.equal(0, #Lr.sessions)
		-- The bridge cannot prove a token it does not hold: to the plug-in it looks like an impostor.
		assert.matches('not Retouch Bridge, or a bridge with another token%. Check the token', lastMessage().message)
		for _, req in ipairs(Lr.requests) do assert.is_nil(req.headers.authorization) end
	end)

	it('the stacked photo carries the original\'s keywords, IPTC text, rating and label', function()
		local photo = original('portrait.CR2', 'RAW', { TIFF16 = Env.fixture('photo16.tif') }, {
			metadata = { title = 'Ana', caption = 'Studio, March', copyright = '© 2024 Jo', creator = 'Jo',
				rating = 4, colorNameForLabel = 'red' },
			keywords = { 'portrait', 'studio' },
		})
		Lr.catalog.targetPhotos = { photo }
		runMenuItem()
		local added = Lr.catalog.added[1].photo
		assert.are.same(photo.metadata, added.metadata)
		assert.are.same({ 'portrait', 'studio' }, added.keywords)
	end)

	it('closing the dialog with Cancel changes nothing', function()
		Lr.modalAnswer = 'cancel'
		Lr.catalog.targetPhotos = { original('x.CR2', 'RAW', { TIFF16 = Env.fixture('photo16.tif') }) }
		runMenuItem()
		assert.are.equal(0, #Lr.requests)
		assert.are.equal(0, #Lr.sessions)
		assert.are.same({ 'x.CR2' }, Scratch.list(library))
	end)

	it('remembers the steps chosen in the dialog for next time', function()
		Lr.prefs.rb_upscaleScale = 4
		Lr.catalog.targetPhotos = { original('y.CR2', 'RAW', { TIFF16 = Env.fixture('photo16.tif') }) }
		runMenuItem()
		assert.are.equal(4, Lr.prefs.rb_upscaleScale)
		assert.are.equal(256, ImageInfo.read(Lr.catalog.added[1].path).width)
	end)

	it('the real hopper sample from ../shared comes back x2 and 16-bit when present', function()
		local hopper = Env.sharedSample('hopper.tif')
		if not hopper then
			pending('../shared/samples/hopper.tif is not present')
			return
		end
		local input = ImageInfo.read(hopper)
		Lr.catalog.targetPhotos = { original('hopper.CR2', 'RAW', { TIFF16 = hopper }) }
		runMenuItem()
		local out = ImageInfo.read(Lr.catalog.added[1].path)
		assert.are.same({ input.width * 2, input.height * 2 }, { out.width, out.height })
		assert.are.equal(input.bits, out.bits)
	end)
end)
