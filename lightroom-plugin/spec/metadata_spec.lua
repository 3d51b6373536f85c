-- XMP and IPTC carried from Lightroom's render into the enhanced file (fixtures from spec/run.sh).
local Lr = require 'lightroom_standin'
local Env = require 'bridge_env'
local Scratch = require 'scratch'
local ImageInfo = require 'image_info'
local Metadata = require 'Metadata'
local Enhancer = require 'Enhancer'

local function identify(path, format)
	local p = io.popen(string.format("identify -quiet %s '%s' 2>&1", format, path))
	local out = p:read('*a')
	p:close()
	return out
end

local hasIdentify = os.execute('command -v identify >/dev/null 2>&1') == 0

describe('Metadata carry-over #fixtures', function()
	local dir
	before_each(function()
		Lr.reset()
		dir = Scratch.dir('metadata')
	end)
	after_each(Scratch.cleanAll)

	local function carry(sourceName, resultName, outName)
		local result = ImageInfo.readAll(Env.fixture(resultName))
		local plan = Metadata.plan(result, Metadata.read(Env.fixture(sourceName)))
		assert.is_table(plan, 'nothing planned')
		local out = dir .. '/' .. outName
		assert(Enhancer.writeAtomically(out, plan))
		return out
	end

	it('reads XMP and IPTC from a Lightroom-style JPEG and TIFF', function()
		local xmp = ImageInfo.readAll(Env.fixture('xmp.bin'))
		local jpeg = Metadata.read(Env.fixture('photo8.jpg'))
		assert.are.equal(xmp, jpeg.xmp)
		assert.truthy(jpeg.photoshop:find(ImageInfo.readAll(Env.fixture('iptc.bin')), 1, true))
		local tiff = Metadata.read(Env.fixture('photo16.tif'))
		assert.are.equal(xmp, tiff.xmp)
		assert.are.equal(ImageInfo.readAll(Env.fixture('iptc.bin')), tiff.iptc)
		assert.are.same({}, Metadata.read(Env.fixture('plain8.jpg')))
		assert.are.same({}, Metadata.read(dir .. '/missing.jpg'))
	end)

	it('JPEG render -> JPEG result: XMP and IPTC added, EXIF, ICC and pixels kept', function()
		local out = carry('photo8.jpg', 'plain8.jpg', 'out.jpg')
		local info, plain = ImageInfo.read(out), ImageInfo.read(Env.fixture('plain8.jpg'))
		assert.are.equal(ImageInfo.readAll(Env.fixture('xmp.bin')), info.xmp)
		assert.truthy(info.photoshop:find(ImageInfo.readAll(Env.fixture('iptc.bin')), 1, true))
		assert.are.equal(plain.icc, info.icc)
		assert.is_true(info.hasExif)
		assert.are.same({ plain.width, plain.height }, { info.width, info.height })
		-- The entropy-coded data after the headers is untouched.
		local a, b = ImageInfo.readAll(Env.fixture('plain8.jpg')), ImageInfo.readAll(out)
		assert.are.equal(a:sub(a:find('\255\218', 1, true)), b:sub(b:find('\255\218', 1, true)))
		if hasIdentify then
			assert.matches('lighthouse', identify(out, '-format "%[IPTC:2:25]"'))
			assert.are.equal(identify(Env.fixture('plain8.jpg'), '-format %#'), identify(out, '-format %#'))
		end
	end)

	it('16-bit TIFF render -> JPEG result: IPTC records wrapped as Photoshop resources', function()
		local out = carry('photo16.tif', 'plain8.jpg', 'out.jpg')
		local info = ImageInfo.read(out)
		assert.are.equal(ImageInfo.readAll(Env.fixture('xmp.bin')), info.xmp)
		if hasIdentify then
			assert.matches('lighthouse;dusk', identify(out, '-format "%[IPTC:2:25]"'))
			assert.matches('Fog over the point', identify(out, '-format "%[IPTC:2:120]"'))
		end
	end)

	it('TIFF result: IFD0 rewritten with the XMP and IPTC tags, pixels and ICC kept', function()
		local out = carry('photo8.jpg', 'plain16.tif', 'out.tif')
		local info, plain = ImageInfo.read(out), ImageInfo.read(Env.fixture('plain16.tif'))
		assert.are.equal(ImageInfo.readAll(Env.fixture('xmp.bin')), info.xmp)
		assert.are.equal(ImageInfo.readAll(Env.fixture('iptc.bin')), info.iptc)
		assert.are.equal(plain.icc, info.icc)
		assert.are.same({ plain.width, plain.height, plain.bits }, { info.width, info.height, info.bits })
		if hasIdentify then
			assert.are.equal(identify(Env.fixture('plain16.tif'), '-format %#'), identify(out, '-format %#'))
			assert.matches('lighthouse', identify(out, '-format "%[IPTC:2:25]"'))
		end
	end)

	it('leaves results that already carry XMP and IPTC, PNGs and non-images alone', function()
		local meta = Metadata.read(Env.fixture('photo8.jpg'))
		assert.is_nil(Metadata.plan(ImageInfo.readAll(Env.fixture('photo8.jpg')), meta))
		assert.is_nil(Metadata.plan(ImageInfo.readAll(Env.fixture('photo16.tif')), meta))
		assert.is_nil(Metadata.plan(ImageInfo.readAll(Env.fixture('photo8.png')), meta))
		assert.is_nil(Metadata.plan('not an image', meta))
		assert.is_nil(Metadata.plan(ImageInfo.readAll(Env.fixture('plain8.jpg')), {}))
	end)
end)
